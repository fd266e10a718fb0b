"""Quick seat at club tables: a member is seated at the fullest open table of their club (or of its union)
with these stakes and a free seat. Club tables are never in the public waiting lists (services/matching.py).
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from sqlalchemy import func, or_, select

from tablium_kit.errors import Conflict, Forbidden
from tablium_lobby.db.models import ACTIVE_SEAT, CashTable, Seat
from tablium_lobby.services.clubs import role_in, union_of

if TYPE_CHECKING:
    from tablium_lobby.services.matching import ListKey
    from tablium_lobby.services.seating import Seating


async def club_quick_seat(
    seating: Seating, player_id: uuid.UUID, club_id: uuid.UUID, key: ListKey, buy_in: int
) -> Seat:
    """The player's seat at these stakes in the club's tables if they have one (asking again changes nothing),
    else a new one; 403 for a non-member, 409 when every such table is full."""
    async with seating.sessions() as session:
        if await role_in(session, club_id, player_id) is None:
            raise Forbidden("you are not a member of this club")
        union_id = await union_of(session, club_id)
        scope = CashTable.club_id == club_id
        if union_id is not None:
            scope = or_(scope, CashTable.union_id == union_id)
        stakes = (
            (CashTable.small_blind == key.small_blind)
            & (CashTable.big_blind == key.big_blind)
            & (CashTable.ante == key.ante)
            & (CashTable.seat_count == key.seat_count)
            & (CashTable.status == "open")
            & scope
        )
        mine = await session.execute(
            select(Seat)
            .join(CashTable, CashTable.id == Seat.table_id)
            .where(stakes, Seat.player_id == player_id, Seat.status.in_(ACTIVE_SEAT))
            .limit(1)
        )
        seat = mine.scalar_one_or_none()
        if seat is not None:
            return seat
        taken = func.count(Seat.id)
        rows = await session.execute(
            select(CashTable.id, CashTable.seat_count, func.array_agg(Seat.seat_no))
            .outerjoin(Seat, (Seat.table_id == CashTable.id) & Seat.status.in_(ACTIVE_SEAT))
            .where(stakes)
            .group_by(CashTable.id, CashTable.seat_count)
            .having(taken < CashTable.seat_count)
            .order_by(taken.desc(), CashTable.id)
            .limit(20)
        )
        candidates = [(table_id, count, {n for n in used if n is not None}) for table_id, count, used in rows.tuples()]
    for table_id, count, used in candidates:
        for seat_no in range(count):
            if seat_no in used:
                continue
            try:
                # The sit-down checks membership and the seat again under the table's lock.
                return await seating.sit_down(table_id, player_id, seat_no, buy_in)
            except Conflict:
                break  # taken meanwhile: the next table
    raise Conflict("no table of this club at these stakes has a free seat")
