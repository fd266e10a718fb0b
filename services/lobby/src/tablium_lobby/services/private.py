"""Private tables (seed 002): a host, join requests, the host's decisions, kicks.

A player asks to join (``pending``); the host approves or rejects; an approved player may sit down (the
usual buy-in saga) or watch; the host may kick an approved player (``kicked``): a seat is cashed out
through the existing leave path, after the hand if the seat is dealt in, and sitting or watching again
takes a new approval. The host needs no membership (the table names its host).

Every change is made under the table's row lock (the lobby's lock order: the table's row first) and
finds a repeated request, approval or kick already done: one effect, whatever the repeats and races.
Each change is announced to the table (``join-requested``, ``join-approved``, ``join-rejected``,
``player-kicked``) with the table's new ``seq``; only the host and members watch a private table.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from tablium_kit.errors import Conflict, Forbidden, NotFound
from tablium_lobby.db.models import ACTIVE_SEAT, CashTable, Seat, TableMember
from tablium_lobby.services.clubs import NOT_A_MEMBER, may_play, still_seated
from tablium_lobby.services.tables import get_table

if TYPE_CHECKING:  # seating checks sit-downs here: imported at run time only where used
    from tablium_lobby.services.seating import Seating

Decision = Literal["approve", "reject", "kick"]
# What each decision makes of a membership, and the statuses it may be taken from (its own: a repeat).
_DECISIONS: dict[str, tuple[str, tuple[str, ...]]] = {
    "approve": ("approved", ("pending", "rejected", "kicked", "approved")),
    "reject": ("rejected", ("pending", "rejected")),
    "kick": ("kicked", ("approved", "kicked")),
}
_ANNOUNCED = {"approved": "join-approved", "rejected": "join-rejected", "kicked": "player-kicked"}


@dataclass(frozen=True)
class Membership:
    table_id: uuid.UUID
    player_id: uuid.UUID
    status: str  # "host" | "pending" | "approved" | "rejected" | "kicked" | "none"
    requested_at: datetime | None = None
    decided_at: datetime | None = None


def _membership(row: TableMember) -> Membership:
    return Membership(row.table_id, row.player_id, row.status, row.requested_at, row.decided_at)


def is_host(table: CashTable, player_id: uuid.UUID | str) -> bool:
    return table.host_id is not None and str(table.host_id) == str(player_id)


async def member_status(session: AsyncSession, table: CashTable, player_id: uuid.UUID) -> str:
    if is_host(table, player_id):
        return "host"
    row = await session.get(TableMember, (table.id, player_id))
    return row.status if row is not None else "none"


async def check_may_sit(session: AsyncSession, table: CashTable, player_id: uuid.UUID) -> None:
    """Refuse a sit-down at a private table by anyone but the host and approved members (table locked)."""
    if table.private and await member_status(session, table, player_id) not in ("host", "approved"):
        raise Forbidden("this table is private: ask the host to let you join (POST …/members)")


async def check_may_watch(session: AsyncSession, table: CashTable, viewer: str, seated: set[str]) -> None:
    """Refuse to show a private table to anyone but its host, approved members and the players still
    seated there (a kicked player dealt in plays the hand out): the table already read, with the players
    holding its active seats. A club table is watched only by the members who may play there."""
    if table.club_id is not None:
        await _may_watch_club_table(session, table, viewer)
    if not table.private or is_host(table, viewer) or viewer in seated:
        return
    try:
        player_id = uuid.UUID(viewer)
    except ValueError:
        raise Forbidden("this table is private") from None
    if await member_status(session, table, player_id) != "approved":
        raise Forbidden("this table is private: only its host and the players the host let in watch it")


async def _may_watch_club_table(session: AsyncSession, table: CashTable, viewer: str) -> None:
    """A club table is watched by the members allowed to play there, and by the players still seated (one
    who left the club plays the hand in progress out)."""
    try:
        player_id = uuid.UUID(viewer)
    except ValueError:
        raise Forbidden(NOT_A_MEMBER) from None
    if not await may_play(session, table, player_id) and not await still_seated(session, table.id, player_id):
        raise Forbidden(NOT_A_MEMBER)


class PrivateTables:
    def __init__(self, seating: Seating) -> None:
        self.seating = seating
        self.sessions = seating.sessions

    async def _private_table(self, session: AsyncSession, table_id: uuid.UUID) -> CashTable:
        table = await get_table(session, table_id, lock=True)
        if not table.private:
            raise NotFound("this table is open to everyone: there is nothing to join")
        if table.status != "open":
            raise Conflict("the table is closed")
        return table

    async def request_join(self, table_id: uuid.UUID, player_id: uuid.UUID) -> Membership:
        """Ask the host to join. A repeated request, or one after a decision, changes nothing (the host
        may approve a rejected or kicked player at any time); the host is a member already."""
        async with self.sessions.begin() as session:
            table = await self._private_table(session, table_id)
            if is_host(table, player_id):
                return Membership(table_id, player_id, "host")
            now = datetime.now(UTC)
            inserted = await session.execute(
                insert(TableMember)
                .values(table_id=table_id, player_id=player_id, status="pending", requested_at=now)
                .on_conflict_do_nothing()
                .returning(TableMember.player_id)
            )
            created = inserted.first() is not None
            row = await session.get(TableMember, (table_id, player_id), populate_existing=True)
            assert row is not None
            if created:
                table.seq += 1
                change: dict[str, object] = {"type": "join-requested", "userId": str(player_id), "seq": table.seq}
        if created:
            await self.seating.notify(table_id, change)
        return _membership(row)

    async def decide(
        self, table_id: uuid.UUID, host_id: uuid.UUID, player_id: uuid.UUID, decision: Decision
    ) -> Membership:
        """The host approves, rejects or kicks ``player_id``. A repeat finds it done and changes nothing.

        A kicked player's seat gets ``leave_requested`` in the same commit as the kick, then goes the
        leave path (``Seating.cash_out_idle``): at once if not dealt in, else after the hand (the dealer
        cashes out such seats when the hand ends); a crash in between leaves the flag, which is acted on.
        """
        target, allowed = _DECISIONS[decision]
        async with self.sessions.begin() as session:
            table = await self._private_table(session, table_id)
            if not is_host(table, host_id):
                raise Forbidden("only the table's host decides who plays here")
            if is_host(table, player_id):
                raise Conflict("the host cannot be approved, rejected or kicked at their own table")
            row = await session.get(TableMember, (table_id, player_id), with_for_update=True)
            if row is None:
                raise NotFound("this player has not asked to join")
            if row.status not in allowed:
                raise Conflict(f"a member who is {row.status} cannot be {target}")
            changed = row.status != target
            after_hand = False
            if changed:
                now = datetime.now(UTC)
                row.status = target
                row.decided_at = now
                if target == "kicked":
                    after_hand = await self._leave_after_kick(session, table, player_id, now)
                table.seq += 1
                change: dict[str, object] = {"type": _ANNOUNCED[target], "userId": str(player_id), "seq": table.seq}
                if target == "kicked":
                    change["afterHand"] = after_hand
            membership = _membership(row)
        if changed:
            await self.seating.notify(table_id, change)
            if target == "kicked":
                await self.seating.cash_out_idle(table_id)
        return membership

    async def _leave_after_kick(
        self, session: AsyncSession, table: CashTable, player_id: uuid.UUID, now: datetime
    ) -> bool:
        """Mark the kicked player's seat to be cashed out; whether it waits for the hand in progress."""
        from tablium_lobby.services.seating import dealt_in

        seat = (
            await session.execute(
                select(Seat)
                .where(Seat.table_id == table.id, Seat.player_id == player_id, Seat.status.in_(ACTIVE_SEAT))
                .with_for_update()
            )
        ).scalar_one_or_none()
        if seat is None or seat.status == "leaving":
            return False
        seat.leave_requested = True
        seat.updated_at = now
        return await dealt_in(session, table, seat.seat_no)

    async def members(self, table_id: uuid.UUID, host_id: uuid.UUID, status: str | None) -> list[Membership]:
        async with self.sessions() as session:
            table = await get_table(session, table_id)
            if not table.private:
                raise NotFound("this table is open to everyone: it has no members")
            if not is_host(table, host_id):
                raise Forbidden("only the table's host sees its members")
            query = select(TableMember).where(TableMember.table_id == table_id)
            if status is not None:
                query = query.where(TableMember.status == status)
            rows = await session.execute(query.order_by(TableMember.requested_at, TableMember.player_id))
            return [_membership(row) for row in rows.scalars()]

    async def my_membership(self, table_id: uuid.UUID, player_id: uuid.UUID) -> Membership:
        async with self.sessions() as session:
            table = await get_table(session, table_id)
            if not table.private:
                raise NotFound("this table is open to everyone: it has no members")
            if is_host(table, player_id):
                return Membership(table_id, player_id, "host")
            row = await session.get(TableMember, (table_id, player_id))
            return _membership(row) if row is not None else Membership(table_id, player_id, "none")
