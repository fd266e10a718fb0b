"""A cash table's stakes and house rules, and the buy-in range they allow. Pure: no I/O."""

from __future__ import annotations

from dataclasses import dataclass

from tablium_kit.errors import InvalidInput
from tablium_poker import TableRules
from tablium_poker.rules import MAX_CHIPS

MIN_SEATS, MAX_SEATS = 2, 10


@dataclass(frozen=True, slots=True)
class Stakes:
    small_blind: int
    big_blind: int
    ante: int
    seat_count: int
    min_buy_in_bb: int
    max_buy_in_bb: int
    rake_bps: int
    rake_cap: int

    def check(self) -> None:
        """Refuse stakes no hand could be dealt at (a 422 naming the rule)."""
        if self.big_blind < 1 or not 0 < self.small_blind <= self.big_blind:
            raise InvalidInput("blinds need 0 < small blind <= big blind")
        if self.ante > self.big_blind:
            raise InvalidInput("the ante may not exceed the big blind")
        if not MIN_SEATS <= self.seat_count <= MAX_SEATS:
            raise InvalidInput(f"a table has {MIN_SEATS} to {MAX_SEATS} seats")
        if not 1 <= self.min_buy_in_bb <= self.max_buy_in_bb:
            raise InvalidInput("the buy-in range needs 1 <= min_buy_in_bb <= max_buy_in_bb")
        if not 0 <= self.rake_bps <= 10_000:
            raise InvalidInput("rake_bps is in basis points: 0..10000")
        # Every chip at the table may end in one stack; the engine counts stacks in 63 bits.
        if self.max_buy_in * self.seat_count > MAX_CHIPS:
            raise InvalidInput(f"max buy-in times seats must not exceed {MAX_CHIPS} chips (the engine's stack range)")

    @property
    def min_buy_in(self) -> int:
        return self.min_buy_in_bb * self.big_blind

    @property
    def max_buy_in(self) -> int:
        return self.max_buy_in_bb * self.big_blind

    def check_buy_in(self, amount: int) -> None:
        if not self.min_buy_in <= amount <= self.max_buy_in:
            raise InvalidInput(f"the buy-in must be within {self.min_buy_in}..{self.max_buy_in} chips")

    def rules(self) -> TableRules:
        """The engine's rules for a hand at this table (no flop, no drop)."""
        return TableRules(
            small_blind=self.small_blind,
            big_blind=self.big_blind,
            ante=self.ante,
            rake_percent_bps=self.rake_bps,
            rake_cap=self.rake_cap,
            no_flop_no_drop=True,
        )
