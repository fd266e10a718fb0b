"""Best-five-of-seven hand evaluation over phevaluator's compiled perfect-hash evaluator.

A hand's *strength* is an int in 1..7462, one value per distinct 5-card hand class, higher is
better. Card ids are phevaluator's, so the hot path calls its C functions directly.

>>> from tablium_poker.cards import parse_cards
>>> rank_hand(parse_cards("AhKh QhJhTh 2c3d")).description
'Royal flush'
>>> rank_hand(parse_cards("7c7d KsKh 2c")).description
'Two pair, Kings and Sevens, Deuce kicker'
>>> evaluate(parse_cards("AcAd2h3s4c")) > evaluate(parse_cards("KcKd2h3s4c"))
True
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import IntEnum
from itertools import combinations, starmap

from phevaluator import _pheval  # the C entry points; the public wrappers add per-call overhead

from .cards import RANKS
from .errors import PokerError

DISTINCT_HANDS = 7462
_TOP = DISTINCT_HANDS + 1  # strength = _TOP - phevaluator rank
_EVAL = {5: _pheval.evaluate_5cards, 6: _pheval.evaluate_6cards, 7: _pheval.evaluate_7cards}
_EVAL7 = _pheval.evaluate_7cards
# The C functions index their tables with the card ids unchecked (an id of 100000 crashes the
# process), so every public entry point keeps only ids in 0..51 and needs them all distinct.
_VALID_CARDS = frozenset(range(52)).intersection


class Category(IntEnum):
    """Hand categories, ordered from weakest to strongest."""

    HIGH_CARD = 0
    PAIR = 1
    TWO_PAIR = 2
    THREE_OF_A_KIND = 3
    STRAIGHT = 4
    FLUSH = 5
    FULL_HOUSE = 6
    FOUR_OF_A_KIND = 7
    STRAIGHT_FLUSH = 8


# Lowest strength of each category (phevaluator's rank boundaries turned around).
_CATEGORY_FLOORS = (
    (DISTINCT_HANDS + 1 - 10, Category.STRAIGHT_FLUSH),
    (DISTINCT_HANDS + 1 - 166, Category.FOUR_OF_A_KIND),
    (DISTINCT_HANDS + 1 - 322, Category.FULL_HOUSE),
    (DISTINCT_HANDS + 1 - 1599, Category.FLUSH),
    (DISTINCT_HANDS + 1 - 1609, Category.STRAIGHT),
    (DISTINCT_HANDS + 1 - 2467, Category.THREE_OF_A_KIND),
    (DISTINCT_HANDS + 1 - 3325, Category.TWO_PAIR),
    (DISTINCT_HANDS + 1 - 6185, Category.PAIR),
    (1, Category.HIGH_CARD),
)
_RANK_NAMES = ("Deuce", "Three", "Four", "Five", "Six", "Seven", "Eight", "Nine", "Ten", "Jack", "Queen", "King", "Ace")
_PLURALS = (
    "Deuces",
    "Threes",
    "Fours",
    "Fives",
    "Sixes",
    "Sevens",
    "Eights",
    "Nines",
    "Tens",
    "Jacks",
    "Queens",
    "Kings",
    "Aces",
)


class EvaluationError(PokerError):
    """Evaluation needs 5 to 7 distinct card ids (0..51)."""


def evaluate(cards: Sequence[int]) -> int:
    """Return the strength (1..7462, higher is better) of the best 5 of 5-7 cards."""
    evaluator = _EVAL.get(len(cards))
    if evaluator is None or len(_VALID_CARDS(cards)) != len(cards):
        raise EvaluationError(f"need 5 to 7 distinct cards (ids 0..51), got {list(cards)!r}")
    try:
        return _TOP - evaluator(*cards)  # type: ignore[no-any-return]
    except TypeError:  # a float such as 3.0 passes the set test; the C function refuses it
        raise EvaluationError(f"card ids must be ints, got {list(cards)!r}") from None


def evaluate_many(hands: Iterable[Sequence[int]]) -> list[int]:
    """Return the strengths of many 7-card hands: the batch path for throughput.

    The whole batch is checked first (7 distinct ids in 0..51 each) in one C-speed pass.
    """
    batch = hands if isinstance(hands, list) else list(hands)
    if batch and set(map(len, map(_VALID_CARDS, batch))) != {7}:
        raise EvaluationError("every hand of a batch needs 7 distinct cards (ids 0..51)")
    try:
        return [_TOP - r for r in starmap(_EVAL7, batch)]
    except TypeError:  # more than 7 items, or a float id such as 3.0
        raise EvaluationError("every hand of a batch needs exactly 7 int card ids") from None


def category(strength: int) -> Category:
    """Return the category of a strength."""
    for floor, cat in _CATEGORY_FLOORS:
        if strength >= floor:
            return cat
    raise EvaluationError(f"not a hand strength: {strength}")


@dataclass(frozen=True, slots=True)
class HandRank:
    """A ranked hand: comparable strength, category, best five cards and a readable description."""

    strength: int
    category: Category
    best_five: tuple[int, ...]
    description: str


def rank_hand(cards: Sequence[int]) -> HandRank:
    """Rank 5-7 cards and describe the best five."""
    strength = evaluate(cards)
    best = max(combinations(cards, 5), key=lambda five: DISTINCT_HANDS + 1 - _EVAL[5](*five))
    cat = category(strength)
    # Order the five by (count, rank) so the description reads like a dealer announces it.
    counts: dict[int, int] = {}
    for c in best:
        counts[c >> 2] = counts.get(c >> 2, 0) + 1
    ranks = sorted(counts, key=lambda r: (counts[r], r), reverse=True)
    best_sorted = tuple(sorted(best, key=lambda c: (counts[c >> 2], c >> 2, c & 3), reverse=True))
    return HandRank(strength, cat, best_sorted, _describe(cat, ranks))


def _describe(cat: Category, ranks: list[int]) -> str:
    top = _RANK_NAMES[ranks[0]]
    if cat in (Category.STRAIGHT, Category.STRAIGHT_FLUSH):
        high = 3 if ranks[:2] == [12, 3] else ranks[0]  # A-2-3-4-5 is a five-high straight
        if cat is Category.STRAIGHT_FLUSH and high == 12:
            return "Royal flush"
        kind = "straight flush" if cat is Category.STRAIGHT_FLUSH else "straight"
        return f"{_RANK_NAMES[high]}-high {kind}"
    kickers = ", ".join(RANKS[r] for r in ranks[1:])
    match cat:
        case Category.FOUR_OF_A_KIND:
            return f"Four {_PLURALS[ranks[0]]}, {_RANK_NAMES[ranks[1]]} kicker"
        case Category.FULL_HOUSE:
            return f"Full house, {_PLURALS[ranks[0]]} full of {_PLURALS[ranks[1]]}"
        case Category.FLUSH:
            return f"{top}-high flush, {kickers}"
        case Category.THREE_OF_A_KIND:
            return f"Three {_PLURALS[ranks[0]]}, {kickers} kickers"
        case Category.TWO_PAIR:
            return f"Two pair, {_PLURALS[ranks[0]]} and {_PLURALS[ranks[1]]}, {_RANK_NAMES[ranks[2]]} kicker"
        case Category.PAIR:
            return f"Pair of {_PLURALS[ranks[0]]}, {kickers} kickers"
        case _:
            return f"{top} high, {kickers}"
