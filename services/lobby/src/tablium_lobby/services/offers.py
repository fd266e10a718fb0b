"""Seat offers at the moment of sitting down: a seat held for a waiting player is taken only with its offer
(and, if the buy-in is then refused, the waiting entry says so).

Called by :meth:`Seating.sit_down` under the table's row lock (lock order: the table, then the offer, then
its waiting entry), so an offer accepted twice seats once, and no one else sits in a held seat.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tablium_kit.errors import Conflict, NotFound
from tablium_lobby.db.waiting import SeatOffer, WaitingEntry


async def claim_seat(
    session: AsyncSession,
    table_id: uuid.UUID,
    seat_no: int,
    player_id: uuid.UUID,
    seat_id: uuid.UUID,
    offer_id: uuid.UUID | None,
    now: datetime,
) -> None:
    """Check the seat against the offers holding it, and accept the offer it is taken with."""
    if offer_id is not None:
        offer = await session.get(SeatOffer, offer_id, with_for_update=True, populate_existing=True)
        if offer is None or offer.player_id != player_id:
            raise NotFound(f"you have no seat offer {offer_id}")
        if offer.table_id != table_id or offer.seat_no != seat_no:
            raise Conflict(f"the offer is for seat {offer.seat_no} of table {offer.table_id}")
    else:
        query = select(SeatOffer).where(
            SeatOffer.table_id == table_id, SeatOffer.seat_no == seat_no, SeatOffer.status == "open"
        )
        offer = (await session.execute(query.with_for_update())).scalar_one_or_none()
        if offer is None:
            return
        if offer.player_id != player_id:
            raise Conflict(f"seat {seat_no} is held for a player from the waiting list")
    if offer.status != "open":
        raise Conflict(f"the seat offer is {offer.status}")
    if offer.expires_at <= now:
        raise Conflict("the seat offer has expired")
    offer.status = "accepted"
    offer.seat_id = seat_id
    offer.finished_at = now
    entry = await session.get(WaitingEntry, offer.entry_id, with_for_update=True, populate_existing=True)
    if entry is not None and entry.status == "offered":
        entry.status = "seated"
        entry.updated_at = now


async def release_refused(session: AsyncSession, seat_id: uuid.UUID, now: datetime) -> None:
    """A seat taken with an offer whose buy-in the wallet refused: its waiting entry is marked
    ``refused`` (out of the line, saying why) instead of staying ``seated`` with no seat. Called under the
    table's row lock, which the refusal holds (then the offer, then the entry, as in :func:`claim_seat`)."""
    offer = (
        await session.execute(
            select(SeatOffer).where(SeatOffer.seat_id == seat_id, SeatOffer.status == "accepted").with_for_update()
        )
    ).scalar_one_or_none()
    if offer is None:
        return
    entry = await session.get(WaitingEntry, offer.entry_id, with_for_update=True, populate_existing=True)
    if entry is not None and entry.status == "seated":
        entry.status = "refused"
        entry.updated_at = now
