"""What a tournament is: its structure (levels, breaks), money and format settings.

Everything here is plain data that round-trips through JSON (``to_dict``/``from_dict``),
so a tournament's configuration can be stored with its state and restored exactly.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

Format = Literal["mtt", "sng", "satellite"]
BreakOrder = Literal["highest", "lowest", "random"]
Purchase = Literal["entry", "rebuy", "addon"]


class TournamentRuleError(ValueError):
    """A configuration or a fact breaks a rule; the message says which."""


@dataclass(frozen=True, slots=True)
class Level:
    """One blind level [RP-11]: the big blind is taken first and the ante is never reduced."""

    small_blind: int
    big_blind: int
    ante: int = 0
    big_blind_ante: bool = False
    duration_s: int = 900

    def check(self) -> None:
        if not 0 < self.small_blind <= self.big_blind:
            raise TournamentRuleError("a level needs 0 < small blind <= big blind")
        if self.ante < 0 or self.duration_s <= 0:
            raise TournamentRuleError("a level needs ante >= 0 and a positive duration")


@dataclass(frozen=True, slots=True)
class Break:
    """A synchronized break after ``after_level`` (1-based), lasting ``duration_s``."""

    after_level: int
    duration_s: int = 300


DEFAULT_LEVELS = tuple(
    Level(sb, sb * 2, ante=sb * 2 if i >= 3 else 0, big_blind_ante=i >= 3, duration_s=900)
    for i, sb in enumerate((25, 50, 75, 100, 150, 200, 300, 400, 500, 600, 800, 1000, 1500, 2000, 3000, 4000))
)


@dataclass(frozen=True, slots=True)
class Structure:
    levels: tuple[Level, ...] = DEFAULT_LEVELS
    breaks: tuple[Break, ...] = ()
    # Breaks every N levels too (0: none), of ``break_every_s``; a break listed in ``breaks`` for the same
    # level wins.
    break_every_levels: int = 0
    break_every_s: int = 300
    # Colour-up at a break when the smallest chip the levels still need grows: the odd chips raced [24, 25B].
    chip_race: bool = False

    def level(self, number: int) -> Level:
        """Level ``number`` (1-based); past the last level the last one repeats."""
        return self.levels[min(number, len(self.levels)) - 1]

    def break_after(self, number: int) -> Break | None:
        for brk in self.breaks:
            if brk.after_level == number:
                return brk
        if self.break_every_levels and number % self.break_every_levels == 0:
            return Break(number, self.break_every_s)
        return None

    def first_break_from(self, number: int) -> int | None:
        """The first level at or after ``number`` that a break follows (None: no break comes)."""
        listed = [brk.after_level for brk in self.breaks if brk.after_level >= number]
        if self.break_every_levels:
            listed.append(-(-max(number, 1) // self.break_every_levels) * self.break_every_levels)
        return min(listed, default=None)

    def check(self) -> None:
        if not self.levels:
            raise TournamentRuleError("a structure needs at least one level")
        for level in self.levels:
            level.check()
        for brk in self.breaks:
            if brk.after_level < 1 or brk.duration_s <= 0:
                raise TournamentRuleError("a break comes after level 1 or later and lasts a positive time")
        if self.break_every_levels < 0 or self.break_every_s <= 0:
            raise TournamentRuleError("breaks every N levels need N >= 0 and a positive duration")


@dataclass(frozen=True, slots=True)
class PayoutRule:
    """How the prize pool is cut (see payouts.py).

    ``fixed_bp``: explicit shares per place in basis points (summing to 10,000); otherwise the
    automatic curve pays ``paid_fraction`` of the field, at least ``min_cash_multiple`` buy-ins,
    the winner about ``first_share`` of the pool (chosen from the field size when None).
    Amounts are multiples of ``round_to`` minor units except first place, which takes the remainder.
    """

    paid_fraction: float = 0.15
    min_cash_multiple: float = 1.5
    first_share: float | None = None
    round_to: int = 1
    fixed_bp: tuple[int, ...] | None = None

    def check(self) -> None:
        if not 0 < self.paid_fraction <= 1 or self.min_cash_multiple < 1 or self.round_to < 1:
            raise TournamentRuleError("payouts need 0 < share paid <= 1, min cash >= 1 buy-in, round_to >= 1")
        if self.first_share is not None and not 0 < self.first_share < 1:
            raise TournamentRuleError("the winner's share must be between 0 and 1")
        if self.fixed_bp is not None and (sum(self.fixed_bp) != 10_000 or min(self.fixed_bp, default=-1) < 0):
            raise TournamentRuleError("fixed payout shares must be non-negative and sum to 10,000 basis points")


@dataclass(frozen=True, slots=True)
class Price:
    """What one purchase costs and where each part goes: the prize pool, the buyer's own PKO bounty
    (held in the pool account until a knockout pays it), the house fee."""

    prize_pool: int
    bounty: int
    fee: int

    @property
    def total(self) -> int:
        return self.prize_pool + self.bounty + self.fee


@dataclass(frozen=True, slots=True)
class TournamentConfig:
    seats_per_table: int = 9
    starting_stack: int = 10_000
    # Money, in minor units of ``asset``: the prize-pool part, the house fee, the PKO bounty part.
    buy_in: int = 0
    fee: int = 0
    bounty: int = 0
    guarantee: int = 0
    asset: str = "USDT"
    structure: Structure = field(default_factory=Structure)
    # Registration stays open while the current level is <= this (0: closes at the start).
    late_reg_until_level: int = 0
    max_reentries: int = 0
    # Rebuys while the level is <= rebuy_until_level and the stack is <= the starting stack; a rebuy
    # costs what an entry costs, split the same way (see ``price``). One add-on per entry, during the
    # first break after the rebuy period (``addon_level``).
    rebuy_until_level: int = 0
    rebuy_chips: int = 0
    addon_chips: int = 0
    format: Format = "mtt"
    # Satellites: each seat won is worth this much of the pool; play ends when the players
    # left equal the seats awarded.
    satellite_seat_value: int = 0
    tolerance: int = 1
    break_order: BreakOrder = "highest"
    # Hand-for-hand starts when the players left are <= places paid + this margin.
    hand_for_hand_margin: int = 1
    payout: PayoutRule = field(default_factory=PayoutRule)
    seed: int = 0

    def check(self) -> None:
        if not 2 <= self.seats_per_table <= 10:
            raise TournamentRuleError("seats per table must be between 2 and 10")
        if self.starting_stack <= 0:
            raise TournamentRuleError("the starting stack must be positive")
        if min(self.buy_in, self.fee, self.bounty, self.guarantee) < 0:
            raise TournamentRuleError("money amounts cannot be negative")
        if self.tolerance < 1:
            raise TournamentRuleError("the balancing tolerance is at least 1")
        if self.format == "satellite" and self.satellite_seat_value <= 0:
            raise TournamentRuleError("a satellite needs a positive seat value")
        if min(self.late_reg_until_level, self.max_reentries, self.rebuy_until_level) < 0:
            raise TournamentRuleError("levels and re-entry counts cannot be negative")
        if min(self.rebuy_chips, self.addon_chips) < 0:
            raise TournamentRuleError("rebuy and add-on chips cannot be negative")
        if self.hand_for_hand_margin < 1:
            # 0 would turn hand-for-hand off without saying so [RP-8]: the bubble is always played hand-for-hand.
            raise TournamentRuleError("the hand-for-hand margin is at least 1")
        self.structure.check()
        self.payout.check()

    def price(self, purchase: Purchase) -> Price:
        """The split of an entry (or re-entry), a rebuy or an add-on.

        A rebuy is a new buy-in for the same seat: the same prize-pool part, the same PKO bounty part
        (added to the buyer's bounty, as the entry's is) and the same fee. An add-on buys chips only:
        its price (the buy-in) goes to the prize pool whole, no bounty and no fee."""
        if purchase == "addon":
            return Price(prize_pool=self.buy_in, bounty=0, fee=0)
        return Price(prize_pool=self.buy_in, bounty=self.bounty, fee=self.fee)

    def addon_level(self) -> int | None:
        """The level after which the add-on break comes: the first break at or after the end of the
        rebuy period (None: no such break, so no add-on is ever possible)."""
        return self.structure.first_break_from(self.rebuy_until_level)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        # Settings at their defaults are left out: a configuration without them reads (and is published) as before.
        structure = data["structure"]
        if not structure["break_every_levels"]:
            del structure["break_every_levels"], structure["break_every_s"]
        if not structure["chip_race"]:
            del structure["chip_race"]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TournamentConfig:
        values = dict(data)
        structure = values.pop("structure", None)
        payout = values.pop("payout", None)
        config = cls(**values)
        if structure is not None:
            config = replace(
                config,
                structure=Structure(
                    levels=tuple(Level(**level) for level in structure.get("levels", ())) or DEFAULT_LEVELS,
                    breaks=tuple(Break(**brk) for brk in structure.get("breaks", ())),
                    break_every_levels=structure.get("break_every_levels", 0),
                    break_every_s=structure.get("break_every_s", 300),
                    chip_race=structure.get("chip_race", False),
                ),
            )
        if payout is not None:
            fixed = payout.get("fixed_bp")
            config = replace(
                config,
                payout=PayoutRule(**{**payout, "fixed_bp": tuple(fixed) if fixed is not None else None}),
            )
        return config
