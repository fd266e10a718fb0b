"""Club tables: the lobby's own projection of club membership (from the club service's events), who may
sit, watch and quick-seat at a club or union table, and standing up a member who left after the hand.

No call to the club service on the hot path: the projection is kept by the consumer (events/handlers.py).
Each row carries the seq of the newest event applied to it; an older event arriving late changes nothing.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from tablium_kit.errors import Conflict, Forbidden
from tablium_lobby.db.models import ACTIVE_SEAT, CashTable, ClubMembership, ClubUnion, Seat

STAFF = ("owner", "manager")
NOT_A_MEMBER = "this is a club table: only members of its club (or of its union's clubs) may play or watch here"


async def apply_member(session: AsyncSession, data: dict[str, Any], *, role: str | None) -> None:
    """``club.member_joined``/``member_updated`` (``role``) or ``member_left`` (None), if newer than the row."""
    statement = insert(ClubMembership).values(
        club_id=uuid.UUID(data["club_id"]), player_id=uuid.UUID(data["player_id"]), role=role, seq=int(data["seq"])
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[ClubMembership.club_id, ClubMembership.player_id],
            set_={"role": statement.excluded.role, "seq": statement.excluded.seq},
            where=ClubMembership.seq < statement.excluded.seq,
        )
    )


async def apply_closed(session: AsyncSession, data: dict[str, Any]) -> list[uuid.UUID]:
    """``club.closed``: nobody is a member of a closed club any more; returns who was."""
    closed = await session.execute(
        update(ClubMembership)
        .where(
            ClubMembership.club_id == uuid.UUID(data["club_id"]),
            ClubMembership.seq < int(data["seq"]),
            ClubMembership.role.is_not(None),
        )
        .values(role=None, seq=int(data["seq"]))
        .returning(ClubMembership.player_id)
    )
    return list(closed.scalars())


async def apply_union(session: AsyncSession, data: dict[str, Any], *, member: bool) -> None:
    statement = insert(ClubUnion).values(
        union_id=uuid.UUID(data["union_id"]), club_id=uuid.UUID(data["club_id"]), member=member, seq=int(data["seq"])
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[ClubUnion.union_id, ClubUnion.club_id],
            set_={"member": statement.excluded.member, "seq": statement.excluded.seq},
            where=ClubUnion.seq < statement.excluded.seq,
        )
    )


async def role_in(session: AsyncSession, club_id: uuid.UUID, player_id: uuid.UUID) -> str | None:
    row = await session.get(ClubMembership, (club_id, player_id))
    return None if row is None else row.role


async def union_of(session: AsyncSession, club_id: uuid.UUID) -> uuid.UUID | None:
    found = await session.execute(
        select(ClubUnion.union_id).where(ClubUnion.club_id == club_id, ClubUnion.member.is_(True)).limit(1)
    )
    return found.scalar_one_or_none()


async def may_play(session: AsyncSession, table: CashTable, player_id: uuid.UUID) -> bool:
    """A public table: anyone. A club table: its club's members. A union table: the members of any club
    in the union."""
    if table.club_id is None:
        return True
    if table.union_id is None:
        return await role_in(session, table.club_id, player_id) is not None
    found = await session.execute(
        select(ClubMembership.club_id)
        .join(ClubUnion, ClubUnion.club_id == ClubMembership.club_id)
        .where(
            ClubUnion.union_id == table.union_id,
            ClubUnion.member.is_(True),
            ClubMembership.player_id == player_id,
            ClubMembership.role.is_not(None),
        )
        .limit(1)
    )
    return found.first() is not None


async def check_may_play(session: AsyncSession, table: CashTable, player_id: uuid.UUID) -> None:
    if not await may_play(session, table, player_id):
        raise Forbidden(NOT_A_MEMBER)


async def club_table_scope(
    session: AsyncSession, club_id: uuid.UUID, player_id: uuid.UUID, *, union_wide: bool
) -> uuid.UUID | None:
    """A club's owner or manager opens its tables (a union table: the club must be in a union); the union."""
    if await role_in(session, club_id, player_id) not in STAFF:
        raise Forbidden("only the club's owner and managers open its tables")
    if not union_wide:
        return None
    union_id = await union_of(session, club_id)
    if union_id is None:
        raise Conflict("the club is in no union")
    return union_id


async def stand_up_after_hand(
    session: AsyncSession, *, player_id: uuid.UUID | None = None, union_id: uuid.UUID | None = None
) -> None:
    """Seats at club tables whose player may no longer play there (a member who left the club, or the
    members of a club that left the union) are to be cashed out, after the hand if dealt in (the leave
    path; the reconciler acts on the flag)."""
    scope = Seat.player_id == player_id if player_id is not None else CashTable.union_id == union_id
    seats = await session.execute(
        select(Seat, CashTable)
        .join(CashTable, CashTable.id == Seat.table_id)
        .where(scope, Seat.status == "seated", CashTable.club_id.is_not(None))
        .with_for_update(of=Seat)
    )
    for seat, table in seats.tuples():
        if not await may_play(session, table, seat.player_id):
            seat.leave_requested = True


async def tables_with_leavers(session: AsyncSession) -> list[uuid.UUID]:
    """Tables with a seated player asked to leave: the reconciler cashes out those not dealt in."""
    found = await session.execute(
        select(Seat.table_id).where(Seat.status == "seated", Seat.leave_requested.is_(True)).distinct().limit(100)
    )
    return list(found.scalars())


async def still_seated(session: AsyncSession, table_id: uuid.UUID, player_id: uuid.UUID) -> bool:
    found = await session.execute(
        select(Seat.id).where(Seat.table_id == table_id, Seat.player_id == player_id, Seat.status.in_(ACTIVE_SEAT))
    )
    return found.first() is not None
