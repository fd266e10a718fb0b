"""Request and response bodies. Requests reject unknown fields: a typo is an error, not a no-op."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec

from tablium_event.domain.config import Break, Level, PayoutRule, Structure, TournamentConfig
from tablium_kit.money import AMOUNT_ITEMS, AMOUNT_VALUES, Amount, PositiveAmount, parse_amount

# Money (in the asset's minor unit) and chips are the kit's amounts: decimal strings in JSON.
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]


class Request(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class LevelIn(Request):
    small_blind: PositiveAmount
    big_blind: PositiveAmount
    ante: Amount = "0"
    big_blind_ante: bool = False
    duration_s: Annotated[int, msgspec.Meta(gt=0, le=24 * 3600)] = 900

    def to_level(self) -> Level:
        return Level(
            small_blind=parse_amount(self.small_blind),
            big_blind=parse_amount(self.big_blind),
            ante=parse_amount(self.ante),
            big_blind_ante=self.big_blind_ante,
            duration_s=self.duration_s,
        )


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
    starting_stack: PositiveAmount = "10000"
    buy_in: Amount = "0"
    fee: Amount = "0"
    bounty: Amount = "0"
    guarantee: Amount = "0"
    asset: Literal["USDT"] = "USDT"
    levels: Annotated[list[LevelIn], msgspec.Meta(min_length=1, max_length=100)] | None = None
    breaks: Annotated[list[BreakIn], msgspec.Meta(max_length=100)] = msgspec.field(default_factory=list)
    late_reg_until_level: Annotated[int, msgspec.Meta(ge=0)] = 0
    max_reentries: Annotated[int, msgspec.Meta(ge=0, le=100)] = 0
    # Rebuys (chips for one buy-in each) while the level is <= rebuy_until_level and the stack is at most
    # the starting stack; one add-on per entry, bought during a break. Both cost the buy-in, all of it
    # into the prize pool (no fee).
    rebuy_until_level: Annotated[int, msgspec.Meta(ge=0, le=100)] = 0
    rebuy_chips: Amount = "0"
    addon_chips: Amount = "0"
    format: Literal["mtt", "sng", "satellite"] = "mtt"
    satellite_seat_value: Amount = "0"
    tolerance: Annotated[int, msgspec.Meta(ge=1, le=5)] = 1
    break_order: Literal["highest", "lowest", "random"] = "highest"
    hand_for_hand_margin: Annotated[int, msgspec.Meta(ge=1, le=100)] = 1
    payout: PayoutIn = msgspec.field(default_factory=PayoutIn)
    seed: int | None = None
    # A club tournament: only the club's members enter (``union_wide``: the members of every club of the
    # club's union); its owner and managers create and direct it. Set at creation only.
    club_id: UUID | None = None
    union_wide: bool = False

    def to_config(self, seed: int | None = None) -> TournamentConfig:
        base = TournamentConfig()
        return TournamentConfig(
            seats_per_table=self.seats_per_table,
            starting_stack=parse_amount(self.starting_stack),
            buy_in=parse_amount(self.buy_in),
            fee=parse_amount(self.fee),
            bounty=parse_amount(self.bounty),
            guarantee=parse_amount(self.guarantee),
            asset=self.asset,
            structure=Structure(
                levels=tuple(level.to_level() for level in self.levels) if self.levels else base.structure.levels,
                breaks=tuple(Break(**msgspec.structs.asdict(brk)) for brk in self.breaks),
            ),
            late_reg_until_level=self.late_reg_until_level,
            max_reentries=self.max_reentries,
            rebuy_until_level=self.rebuy_until_level,
            rebuy_chips=parse_amount(self.rebuy_chips),
            addon_chips=parse_amount(self.addon_chips),
            format=self.format,
            satellite_seat_value=parse_amount(self.satellite_seat_value),
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
    stack: PositiveAmount | None = None
    from_entry: Annotated[int, msgspec.Meta(ge=1)] | None = None


class TieOrderIn(Request):
    """The director's ruling on a tie: every entry of one tie, best place first (whoever busted first is
    last). Each gets its own place and that place's prize instead of a share."""

    entries: Annotated[list[Annotated[int, msgspec.Meta(ge=1)]], msgspec.Meta(min_length=2, max_length=1000)]


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
    stacks: Annotated[dict[str, Amount], AMOUNT_VALUES]
    # Busted entry -> the entries that eliminated it (PKO bounties).
    knockouts: dict[str, list[int]] = msgspec.field(default_factory=dict)


class TournamentOut(msgspec.Struct, kw_only=True):
    id: UUID
    name: str
    status: str
    version: int
    # As created, with money and chips as decimal strings (so are the clock's blinds).
    config: dict[str, Any]
    entries: int
    prize_pool: Amount
    payouts: Annotated[list[Amount], AMOUNT_ITEMS]
    clock: dict[str, Any] | None
    tables: int
    players_left: int | None
    created_at: datetime
    started_at: datetime | None
    # A club tournament's club (and union, when it is open to the union's clubs); null: public.
    club_id: UUID | None = None
    union_id: UUID | None = None


class TournamentSummary(msgspec.Struct, kw_only=True):
    id: UUID
    name: str
    status: str
    buy_in: Amount
    fee: Amount
    starts_with: Amount
    created_at: datetime
    # A club tournament's club (and union, when it is open to the union's clubs); null: public. Anyone
    # may see it listed; only members may register (403 otherwise).
    club_id: UUID | None = None
    union_id: UUID | None = None


class RegistrationOut(msgspec.Struct, kw_only=True):
    id: UUID
    tournament_id: UUID
    player_id: UUID
    entry_no: int
    status: str
    amount: Amount
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
    amount: Amount
    transfer_id: UUID
