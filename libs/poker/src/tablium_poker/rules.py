"""Table rules and per-hand setup: blinds, antes, rake and the explicit house rules."""

from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from .errors import InvalidSetup

MAX_PLAYERS = 10
# Chip amounts must fit a signed 64-bit integer (the lobby stores them as BIGINT).
MAX_CHIPS = 2**63 - 1


def is_chips(value: object, low: int = 0) -> bool:
    """Whether ``value`` is an int chip amount in ``low..MAX_CHIPS`` (a bool is not an amount)."""
    return type(value) is int and low <= value <= MAX_CHIPS


class FoldRule(StrEnum):
    """What a fold means when checking is free (the engine never silently lets a live hand die)."""

    REFUSE = "refuse"  # raise IllegalAction: the player must check
    CHECK = "check"  # treat the fold as a check


@dataclass(frozen=True, slots=True)
class TableRules:
    """The stakes and house rules of a table. Chip amounts are integers.

    ``rake_percent_bps`` is in basis points (500 = 5%) so rake stays integral;
    ``rake_cap`` of 0 means uncapped. ``min_bet`` defaults to the big blind.
    ``auto_showdown`` shows or mucks for players; with it off, each player in showdown
    order must ``show`` or ``muck`` (PHH replay uses this to follow the history).
    The default blind plan posts ``straddle`` only with four or more players dealt in (the seat
    after the big blind; three-handed that would be the button, and heads-up nobody straddles).
    """

    small_blind: int
    big_blind: int
    ante: int = 0
    big_blind_ante: int = 0
    straddle: int = 0
    min_bet: int = 0
    rake_percent_bps: int = 0
    rake_cap: int = 0
    no_flop_no_drop: bool = True
    fold_rule: FoldRule = FoldRule.REFUSE
    auto_showdown: bool = True

    def __post_init__(self) -> None:
        amounts = (self.small_blind, self.big_blind, self.ante, self.big_blind_ante, self.straddle)
        if not all(map(is_chips, (*amounts, self.min_bet, self.rake_cap, self.rake_percent_bps))):
            raise InvalidSetup(f"chip amounts and the rake must be ints in 0..{MAX_CHIPS}")
        if type(self.no_flop_no_drop) is not bool or type(self.auto_showdown) is not bool:
            raise InvalidSetup("no_flop_no_drop and auto_showdown must be true or false")
        if not isinstance(self.fold_rule, FoldRule):
            raise InvalidSetup(f"fold_rule must be a FoldRule, got {self.fold_rule!r}")
        if self.big_blind < 1 or not 0 <= self.small_blind <= self.big_blind:
            raise InvalidSetup("blinds need 0 <= small blind <= big blind and a big blind of at least 1")
        if self.straddle and self.straddle < 2 * self.big_blind:
            raise InvalidSetup("a straddle must be at least twice the big blind")
        if not 0 <= self.rake_percent_bps <= 10_000:
            raise InvalidSetup("rake percentage must be within 0..10000 basis points")
        if not self.min_bet:
            object.__setattr__(self, "min_bet", self.big_blind)

    def to_dict(self) -> dict[str, int | bool | str]:
        """Return the rules as a JSON-able dict."""
        return {
            "small_blind": self.small_blind,
            "big_blind": self.big_blind,
            "ante": self.ante,
            "big_blind_ante": self.big_blind_ante,
            "straddle": self.straddle,
            "min_bet": self.min_bet,
            "rake_percent_bps": self.rake_percent_bps,
            "rake_cap": self.rake_cap,
            "no_flop_no_drop": self.no_flop_no_drop,
            "fold_rule": self.fold_rule.value,
            "auto_showdown": self.auto_showdown,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> "TableRules":
        """Rebuild rules saved by :meth:`to_dict`."""
        values = dict(data)
        values["fold_rule"] = FoldRule(str(values["fold_rule"]))
        return cls(**values)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class BlindPlan:
    """Who posts what this hand: the tournament hooks for dead button and missed blinds.

    The default plan (:func:`default_blind_plan`) puts the small blind left of the button
    (the button itself heads-up) and the big blind next. A tournament director sets
    ``small_blind_seat=None`` for a dead small blind, ``dead_posts`` for missed blinds posted
    as dead money into the pot, and ``live_posts`` for a returning player posting a live big blind.
    """

    small_blind_seat: int | None
    big_blind_seat: int
    straddle_seat: int | None = None
    dead_posts: Mapping[int, int] = field(default_factory=dict)
    live_posts: Mapping[int, int] = field(default_factory=dict)


def clockwise_from_button(seats: list[int], button: int) -> list[int]:
    """Order seats (ints >= 0) clockwise from the first seat left of the button (the button last).

    >>> clockwise_from_button([7, 0, 3, 5], 3)
    [5, 7, 0, 3]
    """
    ordered = sorted(seats)
    cut = bisect_right(ordered, button)
    return ordered[cut:] + ordered[:cut]


def default_blind_plan(rules: TableRules, seats: list[int], button: int) -> BlindPlan:
    """Blinds by position; heads-up the button posts the small blind and acts first pre-flop."""
    return positional_blind_plan(rules, clockwise_from_button(seats, button))


def positional_blind_plan(rules: TableRules, order: list[int]) -> BlindPlan:
    """The default plan for seats already ordered by :func:`clockwise_from_button`."""
    if len(order) == 2:
        return BlindPlan(order[1], order[0])
    straddle = order[2] if rules.straddle and len(order) > 3 else None
    return BlindPlan(order[0], order[1], straddle)
