"""Quick seat, waiting lists and seat offers: thin handlers over services/matching.py."""

from __future__ import annotations

from datetime import datetime
from typing import Literal, TypeAlias
from uuid import UUID

import msgspec
from litestar import Controller, delete, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from tablium_kit.auth import BEARER
from tablium_kit.money import Amount, PositiveAmount, format_amount, parse_amount
from tablium_lobby.api.schemas import Request, SeatCount, SeatOut
from tablium_lobby.api.tables import player_id, seat_out
from tablium_lobby.services.club_seating import club_quick_seat
from tablium_lobby.services.lists import ListKey
from tablium_lobby.services.matching import EntryView, Matching


class QuickSeatIn(Request, kw_only=True):
    small_blind: PositiveAmount
    big_blind: PositiveAmount
    ante: Amount = "0"
    seats: SeatCount = 9
    buy_in: PositiveAmount
    # Quick seat at this club's tables (and its union's), for its members; never a waiting list.
    club_id: UUID | None = None


class AcceptIn(Request):
    # The buy-in to sit down with; by default the one asked for when joining the list.
    buy_in: PositiveAmount | None = None


class OfferOut(msgspec.Struct, kw_only=True):
    id: UUID
    table_id: UUID
    seat: int
    expires_at: datetime


class EntryOut(msgspec.Struct, kw_only=True):
    id: UUID
    # refused: the buy-in of the seat taken with its offer was refused (funds, limits); out of the line.
    status: Literal["waiting", "offered", "seated", "left", "missed", "refused"]
    small_blind: Amount
    big_blind: Amount
    ante: Amount
    seats: int
    buy_in: Amount
    # Place in line from 1 and people waiting, while waiting (not once offered a seat).
    position: int | None
    waiting: int
    offer: OfferOut | None
    created_at: datetime


class QuickSeatOut(msgspec.Struct, kw_only=True):
    status: Literal["seated", "offered", "waiting"]
    seat: SeatOut | None = None
    table_id: UUID | None = None
    entry: EntryOut | None = None


def entry_out(view: EntryView) -> EntryOut:
    e, o = view.entry, view.offer
    return EntryOut(
        id=e.id,
        status=e.status,  # type: ignore[arg-type]
        small_blind=format_amount(e.small_blind),
        big_blind=format_amount(e.big_blind),
        ante=format_amount(e.ante),
        seats=e.seat_count,
        buy_in=format_amount(e.buy_in),
        position=view.position,
        waiting=view.waiting,
        offer=None if o is None else OfferOut(id=o.id, table_id=o.table_id, seat=o.seat_no, expires_at=o.expires_at),
        created_at=e.created_at,
    )


MatchingDep: TypeAlias = NamedDependency[Matching]


def provide_matching(state: State) -> Matching:
    matching: Matching = state.matching
    return matching


class WaitingController(Controller):
    path = "/api/v1"
    tags = ["quick seat"]
    security = BEARER

    @post(
        "/quick-seat",
        status_code=HTTP_200_OK,
        summary="Quick seat: the fullest open table of these stakes with a free seat, else the stake's waiting list",
    )
    async def quick_seat(self, data: JSONBody[QuickSeatIn], matching: MatchingDep) -> QuickSeatOut:
        key = ListKey(parse_amount(data.small_blind), parse_amount(data.big_blind), parse_amount(data.ante), data.seats)
        if data.club_id is not None:
            seat = await club_quick_seat(matching.seating, player_id(), data.club_id, key, parse_amount(data.buy_in))
            return QuickSeatOut(status="seated", seat=seat_out(seat), table_id=seat.table_id)
        result = await matching.quick_seat(player_id(), key, parse_amount(data.buy_in))
        if result.seat is not None:
            return QuickSeatOut(status="seated", seat=seat_out(result.seat), table_id=result.seat.table_id)
        assert result.entry is not None
        entry = entry_out(result.entry)
        return QuickSeatOut(status=entry.status, entry=entry)  # type: ignore[arg-type]

    @get("/waiting-lists/me", summary="My places in waiting lists, and the seats offered to me")
    async def mine(self, matching: MatchingDep) -> list[EntryOut]:
        return [entry_out(view) for view in await matching.entries_of(player_id())]

    @delete(
        "/waiting-lists/me/{entry_id:uuid}",
        status_code=HTTP_200_OK,
        summary="Leave a waiting list (an offered seat passes to the next)",
    )
    async def leave(self, entry_id: FromPath[UUID], matching: MatchingDep) -> EntryOut:
        return entry_out(await matching.leave_list(entry_id, player_id()))

    @post(
        "/seat-offers/{offer_id:uuid}/accept",
        status_code=HTTP_201_CREATED,
        summary="Take an offered seat: sit down with a buy-in (a wallet hold posted into escrow)",
    )
    async def accept(self, offer_id: FromPath[UUID], data: JSONBody[AcceptIn], matching: MatchingDep) -> SeatOut:
        buy_in = None if data.buy_in is None else parse_amount(data.buy_in)
        return seat_out(await matching.accept(offer_id, player_id(), buy_in))
