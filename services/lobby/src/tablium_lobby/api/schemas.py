"""Request and response bodies. Requests refuse unknown fields; chips and money are decimal strings."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

import msgspec

from tablium_kit.money import Amount, PositiveAmount

# Control characters are refused by the kit for every text field (tablium_kit.inputs).
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
SeatCount = Annotated[int, msgspec.Meta(ge=2, le=10)]
BuyInBigBlinds = Annotated[int, msgspec.Meta(ge=1, le=10_000)]
SeatNumber = Annotated[int, msgspec.Meta(ge=0, le=9)]
Seconds = Annotated[int, msgspec.Meta(ge=1, le=600)]
BankSeconds = Annotated[int, msgspec.Meta(ge=0, le=3600)]


class Request(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class TableSettingsIn(Request):
    """A table's stakes and house rules (a player opening a private table sends only these)."""

    name: Name
    small_blind: PositiveAmount
    big_blind: PositiveAmount
    ante: Amount = "0"
    seats: SeatCount = 9
    min_buy_in_bb: BuyInBigBlinds = 40
    max_buy_in_bb: BuyInBigBlinds = 100
    # Rake in basis points (500 = 5%) with a cap in chips ("0": uncapped); no flop, no drop.
    rake_bps: Annotated[int, msgspec.Meta(ge=0, le=10_000)] = 500
    rake_cap: Amount = "0"
    action_clock_s: Seconds = 20
    time_bank_s: BankSeconds = 60
    # The time bank refill: +time_bank_refill_s every time_bank_refill_hands hands a seat is dealt into,
    # never beyond time_bank_s (0: no refill).
    time_bank_refill_s: BankSeconds = 5
    time_bank_refill_hands: Annotated[int, msgspec.Meta(ge=0, le=1000)] = 10


class TableIn(TableSettingsIn):
    private: bool = False


class SitIn(Request):
    seat: SeatNumber
    buy_in: PositiveAmount


class TopUpIn(Request):
    amount: PositiveAmount


class SeatOut(msgspec.Struct, kw_only=True):
    seat: int
    player_id: UUID
    stack: Amount
    status: str
    sitting_out: bool
    leave_requested: bool


class TableOut(msgspec.Struct, kw_only=True):
    id: UUID
    name: str
    game: str
    asset: str
    status: str
    small_blind: Amount
    big_blind: Amount
    ante: Amount
    seats: int
    free_seats: int
    min_buy_in: Amount
    max_buy_in: Amount
    rake_bps: int
    rake_cap: Amount
    action_clock_s: int
    time_bank_s: int
    time_bank_refill_s: int
    time_bank_refill_hands: int
    private: bool
    # A club table: only the club's members (a union table: the union's clubs' members) play there.
    club_id: UUID | None = None
    union_id: UUID | None = None
    seq: int
    hands_dealt: int
    created_at: datetime
    players: list[SeatOut] = msgspec.field(default_factory=list)


class LeaveOut(msgspec.Struct, kw_only=True):
    status: Literal["left", "leaving_after_hand"]
    cashed_out: Amount
