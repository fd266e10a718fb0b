"""A service's own projection of club membership, kept from the club service's events (docs/clubs.md).

The lobby (club tables) and the event service (club tournaments) each keep one in their own database, so
neither calls the club service on a hot path: who is a member of which club with which role
(``club_memberships``, ``club.member_joined``/``member_updated``/``member_left``, ``club.closed``), and which
clubs a union holds (``club_unions``, ``club.union_joined``/``union_left``). Each row keeps the ``seq`` of the
newest event applied to it (the club's for a membership, the union's for a union's club), so an older event
arriving late, or one delivered twice, changes nothing; a member who left keeps their row with no role.

A service creates the tables in its own metadata (``club_projection_tables(Base.metadata)``, as it does
``messaging_tables``), builds a :class:`ClubProjection` on them, and registers
``projection.handlers(leavers)`` with its consumer: ``leavers`` runs in the same transaction, after the
projection changed, with whoever may have lost the right to play (:class:`Leavers`) — the lobby stands them
up after the hand, the event service unregisters them before the start.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import BigInteger, Boolean, Column, MetaData, String, Table, Uuid, literal, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from tablium_kit.messaging.consumer import Handler
from tablium_kit.messaging.envelope import CloudEvent

MEMBER_JOINED = "club.member_joined"
MEMBER_UPDATED = "club.member_updated"
MEMBER_LEFT = "club.member_left"
CLUB_CLOSED = "club.closed"
UNION_JOINED = "club.union_joined"
UNION_LEFT = "club.union_left"

# A closed club's row under this "player": its close's seq, so a join older than the close that arrives after
# it (events come in any order) admits nobody. Its role is None: no check ever counts it as a member.
CLOSED_CLUB = uuid.UUID(int=0)


@dataclass(frozen=True)
class ClubProjectionTables:
    memberships: Table
    unions: Table


def club_projection_tables(metadata: MetaData) -> ClubProjectionTables:
    """The projection's two tables in a service's metadata (its naming convention names their keys)."""
    memberships = Table(
        "club_memberships",
        metadata,
        Column("club_id", Uuid, primary_key=True),
        Column("player_id", Uuid, primary_key=True, index=True),
        # None once the player left (or the club closed).
        Column("role", String(16), nullable=True),
        Column("seq", BigInteger, nullable=False),
    )
    unions = Table(
        "club_unions",
        metadata,
        Column("union_id", Uuid, primary_key=True),
        Column("club_id", Uuid, primary_key=True, index=True),
        Column("member", Boolean, nullable=False),
        Column("seq", BigInteger, nullable=False),
    )
    return ClubProjectionTables(memberships, unions)


@dataclass(frozen=True)
class Leavers:
    """Who may have lost the right to play after a club event: ``player_ids`` who left (or were members of
    a closed club), the closed ``club_id``, or the ``union_id`` a club left. The service checks each place
    it admits them against the projection as it is now (a player may still be a member through another
    club of a union)."""

    player_ids: tuple[uuid.UUID, ...] = ()
    club_id: uuid.UUID | None = None
    union_id: uuid.UUID | None = None


LeaversHook = Callable[[AsyncSession, Leavers], Awaitable[None]]


class ClubProjection:
    """The projection on one service's tables: applying the club service's events, and reading it."""

    def __init__(self, tables: ClubProjectionTables) -> None:
        self.memberships = tables.memberships
        self.unions = tables.unions

    async def apply_member(self, session: AsyncSession, data: Mapping[str, Any], *, role: str | None) -> None:
        """``club.member_joined``/``member_updated`` (``role``) or ``member_left`` (None), if newer than the row
        and than the club's close."""
        m = self.memberships
        club_id, seq = uuid.UUID(data["club_id"]), int(data["seq"])
        closed_since = (
            select(m.c.seq).where(m.c.club_id == club_id, m.c.player_id == CLOSED_CLUB, m.c.seq > seq).exists()
        )
        rows = select(
            literal(club_id, Uuid).label("club_id"),
            literal(uuid.UUID(data["player_id"]), Uuid).label("player_id"),
            literal(role, String).label("role"),
            literal(seq, BigInteger).label("seq"),
        ).where(~closed_since)
        statement = insert(m).from_select(["club_id", "player_id", "role", "seq"], rows)
        await session.execute(
            statement.on_conflict_do_update(
                index_elements=[m.c.club_id, m.c.player_id],
                set_={"role": statement.excluded.role, "seq": statement.excluded.seq},
                where=m.c.seq < statement.excluded.seq,
            )
        )

    async def apply_closed(self, session: AsyncSession, data: Mapping[str, Any]) -> list[uuid.UUID]:
        """``club.closed``: nobody is a member of a closed club any more, nor becomes one by an older join
        arriving later; returns who was."""
        m = self.memberships
        club_id, seq = uuid.UUID(data["club_id"]), int(data["seq"])
        marker = insert(m).values(club_id=club_id, player_id=CLOSED_CLUB, role=None, seq=seq)
        await session.execute(
            marker.on_conflict_do_update(
                index_elements=[m.c.club_id, m.c.player_id], set_={"seq": marker.excluded.seq}, where=m.c.seq < seq
            )
        )
        closed = await session.execute(
            update(m)
            .where(m.c.club_id == club_id, m.c.seq < seq, m.c.role.is_not(None))
            .values(role=None, seq=seq)
            .returning(m.c.player_id)
        )
        return list(closed.scalars())

    async def apply_union(self, session: AsyncSession, data: Mapping[str, Any], *, member: bool) -> None:
        """``club.union_joined`` (``member``) or ``union_left``, if newer than the row."""
        u = self.unions
        statement = insert(u).values(
            union_id=uuid.UUID(data["union_id"]),
            club_id=uuid.UUID(data["club_id"]),
            member=member,
            seq=int(data["seq"]),
        )
        await session.execute(
            statement.on_conflict_do_update(
                index_elements=[u.c.union_id, u.c.club_id],
                set_={"member": statement.excluded.member, "seq": statement.excluded.seq},
                where=u.c.seq < statement.excluded.seq,
            )
        )

    async def role_in(self, session: AsyncSession, club_id: uuid.UUID, player_id: uuid.UUID) -> str | None:
        """The player's role in the club (None: not a member, or no longer)."""
        m = self.memberships
        role: str | None = await session.scalar(
            select(m.c.role).where(m.c.club_id == club_id, m.c.player_id == player_id)
        )
        return role

    async def union_of(self, session: AsyncSession, club_id: uuid.UUID) -> uuid.UUID | None:
        """The union the club is in (None: none)."""
        u = self.unions
        union_id: uuid.UUID | None = await session.scalar(
            select(u.c.union_id).where(u.c.club_id == club_id, u.c.member.is_(True)).limit(1)
        )
        return union_id

    async def is_member(
        self, session: AsyncSession, player_id: uuid.UUID, *, club_id: uuid.UUID, union_id: uuid.UUID | None
    ) -> bool:
        """A member of the club (``union_id`` None), or of any club in the union."""
        if union_id is None:
            return await self.role_in(session, club_id, player_id) is not None
        m, u = self.memberships, self.unions
        found = await session.execute(
            select(m.c.club_id)
            .join(u, u.c.club_id == m.c.club_id)
            .where(u.c.union_id == union_id, u.c.member.is_(True), m.c.player_id == player_id, m.c.role.is_not(None))
            .limit(1)
        )
        return found.first() is not None

    def handlers(self, leavers: LeaversHook) -> dict[str, Handler]:
        """The consumer's handlers of the club events the projection follows; ``leavers`` runs after a leave,
        a close or a union's loss of a club, with the projection already changed (flushed)."""

        async def on_member(session: AsyncSession, event: CloudEvent) -> None:
            await self.apply_member(session, event.data, role=str(event.data["role"]))

        async def on_member_left(session: AsyncSession, event: CloudEvent) -> None:
            await self.apply_member(session, event.data, role=None)
            await leavers(session, Leavers(player_ids=(uuid.UUID(event.data["player_id"]),)))

        async def on_club_closed(session: AsyncSession, event: CloudEvent) -> None:
            players = await self.apply_closed(session, event.data)
            await leavers(session, Leavers(player_ids=tuple(players), club_id=uuid.UUID(event.data["club_id"])))

        async def on_union_joined(session: AsyncSession, event: CloudEvent) -> None:
            await self.apply_union(session, event.data, member=True)

        async def on_union_left(session: AsyncSession, event: CloudEvent) -> None:
            await self.apply_union(session, event.data, member=False)
            await leavers(session, Leavers(union_id=uuid.UUID(event.data["union_id"])))

        return {
            MEMBER_JOINED: on_member,
            MEMBER_UPDATED: on_member,
            MEMBER_LEFT: on_member_left,
            CLUB_CLOSED: on_club_closed,
            UNION_JOINED: on_union_joined,
            UNION_LEFT: on_union_left,
        }
