"""Request and response bodies. Requests reject unknown fields: a typo is an error, not a no-op."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec

from tablium_event.domain.config import Break, Level, PayoutRule, Structure, TournamentConfig

Money = Annotated[int, msgspec.Meta(ge=0, le=10**15)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]


class Request(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class LevelIn(Request):
    small_blind: Annotated[int, msgspec.Meta(gt=0)]
    big_blind: Annotated[int, msgspec.Meta(gt=0)]
    ante: Annotated[int, msgspec.Meta(ge=0)] = 0
    big_blind_ante: bool = False
    duration_s: Annotated[int, msgspec.Meta(gt=0, le=24 * 3600)] = 900


class BreakIn(Request):
    after_level: Annotated[int, msgspec.Meta(ge=1)]
    duration_s: Annotated[int, msgspec.Meta(gt=0, le=3600)] = 300


class PayoutIn(Request):
    paid_fraction: Annotated[float, msgspec.Meta(gt=0, le=0.5)] = 0.15
    min_cash_multiple: Annotated[float, msgspec.Meta(ge=1, le=10)] = 1.5
    first_share: Annotated[float, msgspec.Meta(gt=0, lt=1)] | None = None
    round_to: Annotated[int, msgspec.Meta(ge=1)] = 1
    fixed_bp: Annotated[list[int], msgspec.Meta(min_length=1, max_length=1000)] | None = None


class TournamentIn(Request):
    """Everything a director sets before the start."""

    name: Name
    seats_per_table: Annotated[int, msgspec.Meta(ge=2, le=10)] = 9
    starting_stack: Annotated[int, msgspec.Meta(gt=0)] = 10_000
    buy_in: Money = 0
    fee: Money = 0
    bounty: Money = 0
    guarantee: Money = 0
    asset: Literal["USDT"] = "USDT"
    levels: Annotated[list[LevelIn], msgspec.Meta(min_length=1, max_length=100)] | None = None
    breaks: Annotated[list[BreakIn], msgspec.Meta(max_length=100)] = msgspec.field(default_factory=list)
    late_reg_until_level: Annotated[int, msgspec.Meta(ge=0)] = 0
    max_reentries: Annotated[int, msgspec.Meta(ge=0, le=100)] = 0
    # Rebuys (chips for one buy-in each) while the level is <= rebuy_until_level and the stack is at most
    # the starting stack; one add-on per entry, bought during a break. Both cost the buy-in, all of it
    # into the prize pool (no fee).
    rebuy_until_level: Annotated[int, msgspec.Meta(ge=0, le=100)] = 0
    rebuy_chips: Annotated[int, msgspec.Meta(ge=0, le=10**12)] = 0
    addon_chips: Annotated[int, msgspec.Meta(ge=0, le=10**12)] = 0
    format: Literal["mtt", "sng", "satellite"] = "mtt"
    satellite_seat_value: Money = 0
    tolerance: Annotated[int, msgspec.Meta(ge=1, le=5)] = 1
    break_order: Literal["highest", "lowest", "random"] = "highest"
    hand_for_hand_margin: Annotated[int, msgspec.Meta(ge=0, le=100)] = 1
    payout: PayoutIn = msgspec.field(default_factory=PayoutIn)
    seed: int | None = None

    def to_config(self, seed: int | None = None) -> TournamentConfig:
        base = TournamentConfig()
        return TournamentConfig(
            seats_per_table=self.seats_per_table,
            starting_stack=self.starting_stack,
            buy_in=self.buy_in,
            fee=self.fee,
            bounty=self.bounty,
            guarantee=self.guarantee,
            asset=self.asset,
            structure=Structure(
                levels=tuple(Level(**msgspec.structs.asdict(level)) for level in self.levels)
                if self.levels
                else base.structure.levels,
                breaks=tuple(Break(**msgspec.structs.asdict(brk)) for brk in self.breaks),
            ),
            late_reg_until_level=self.late_reg_until_level,
            max_reentries=self.max_reentries,
            rebuy_until_level=self.rebuy_until_level,
            rebuy_chips=self.rebuy_chips,
            addon_chips=self.addon_chips,
            format=self.format,
            satellite_seat_value=self.satellite_seat_value,
            tolerance=self.tolerance,
            break_order=self.break_order,
            hand_for_hand_margin=self.hand_for_hand_margin,
            payout=PayoutRule(
                paid_fraction=self.payout.paid_fraction,
                min_cash_multiple=self.payout.min_cash_multiple,
                first_share=self.payout.first_share,
                round_to=self.payout.round_to,
                fixed_bp=tuple(self.payout.fixed_bp) if self.payout.fixed_bp else None,
            ),
            # The seat draw is seeded: recorded, so every decision can be replayed.
            seed=self.seed if self.seed is not None else seed if seed is not None else secrets.randbits(31),
        )


class TournamentEdit(Request):
    """A new name and/or the whole configuration (as when creating)."""

    name: Name | None = None
    config: TournamentIn | None = None


class UndoIn(Request):
    """Undo the last move, or the last single bust-out: the player gets ``stack`` chips back from
    ``from_entry`` (the player of that table who won them), once that table is between hands."""

    what: Literal["bust", "move"]
    stack: Annotated[int, msgspec.Meta(gt=0)] | None = None
    from_entry: Annotated[int, msgspec.Meta(ge=1)] | None = None


class SeatLockIn(Request):
    entry: Annotated[int, msgspec.Meta(ge=1)]
    locked: bool = True


class ToleranceIn(Request):
    tolerance: Annotated[int, msgspec.Meta(ge=1, le=5)]


class PurchaseIn(Request):
    """A rebuy or an add-on. ``request_id`` is the client's: a retry with the same id is charged once."""

    request_id: UUID


class HandIn(Request):
    """A hand finished at a tournament table (the lobby calls this)."""

    hand_id: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    table: Annotated[int, msgspec.Meta(ge=1)]
    # Entry id (as a string: JSON object keys) -> chips after the hand, for every seated entry.
    stacks: dict[str, Annotated[int, msgspec.Meta(ge=0)]]
    # Busted entry -> the entries that eliminated it (PKO bounties).
    knockouts: dict[str, list[int]] = msgspec.field(default_factory=dict)


class TournamentOut(msgspec.Struct, kw_only=True):
    id: UUID
    name: str
    status: str
    version: int
    config: dict[str, Any]
    entries: int
    prize_pool: int
    payouts: list[int]
    clock: dict[str, Any] | None
    tables: int
    players_left: int | None
    created_at: datetime
    started_at: datetime | None


class TournamentSummary(msgspec.Struct, kw_only=True):
    id: UUID
    name: str
    status: str
    buy_in: int
    fee: int
    starts_with: int
    created_at: datetime


class RegistrationOut(msgspec.Struct, kw_only=True):
    id: UUID
    tournament_id: UUID
    player_id: UUID
    entry_no: int
    status: str
    amount: int
    hold_transfer_id: UUID
    entry_id: int | None


class EntryOut(msgspec.Struct, kw_only=True):
    """One registration in the lobby's entry list. ``status``: registered (the buy-in is held, before the
    start or while a late entry is being seated) or entered (the buy-in is in the prize pool); ``entry_id``
    is the engine's entry (tables, standings) once entered."""

    player_id: UUID
    entry_no: int
    status: Literal["registered", "entered"]
    registered_at: datetime
    entry_id: int | None


class PurchaseOut(msgspec.Struct, kw_only=True):
    id: UUID
    tournament_id: UUID
    player_id: UUID
    entry_id: int
    kind: str
    status: str
    amount: int
    transfer_id: UUID
