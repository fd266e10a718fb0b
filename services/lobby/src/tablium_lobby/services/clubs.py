"""Club tables: the lobby's own projection of club membership (from the club service's events), who may
sit, watch and quick-seat at a club or union table, and standing up a member who left after the hand.

No call to the club service on the hot path: the projection is the kit's (``tablium_kit.club_projection``,
shared with the event service's club tournaments) on the lobby's own tables, kept by the consumer
(events/handlers.py).
Each row carries the seq of the newest event applied to it; an older event arriving late changes nothing.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tablium_kit.club_projection import ClubProjection, Leavers
from tablium_kit.errors import Conflict, Forbidden
from tablium_lobby.db.models import ACTIVE_SEAT, CLUBS, CashTable, Seat

STAFF = ("owner", "manager")
NOT_A_MEMBER = "this is a club table: only members of its club (or of its union's clubs) may play or watch here"

# Kept by the consumer from the club service's events (``events/handlers.py``), in the lobby's tables.
PROJECTION = ClubProjection(CLUBS)
role_in = PROJECTION.role_in
union_of = PROJECTION.union_of


async def may_play(session: AsyncSession, table: CashTable, player_id: uuid.UUID) -> bool:
    """A public table: anyone. A club table: its club's members. A union table: the members of any club
    in the union."""
    if table.club_id is None:
        return True
    return await PROJECTION.is_member(session, player_id, club_id=table.club_id, union_id=table.union_id)


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


async def stand_up_leavers(session: AsyncSession, leavers: Leavers) -> None:
    """The projection's hook after a leave, a close or a union's loss of a club: their seats at club tables
    they may no longer play at are marked to leave (``stand_up_after_hand``)."""
    for player_id in leavers.player_ids:
        await stand_up_after_hand(session, player_id=player_id)
    if leavers.union_id is not None:
        await stand_up_after_hand(session, union_id=leavers.union_id)


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
