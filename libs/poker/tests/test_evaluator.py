"""The evaluator against treys (an independent reference) on every hand class and random hands."""

import random
from itertools import combinations_with_replacement

import pytest
from treys import Card as TreysCard
from treys import Evaluator as TreysEvaluator

from tablium_poker import Category, evaluate, evaluate_many, format_cards, parse_cards, rank_hand
from tablium_poker.evaluator import DISTINCT_HANDS, EvaluationError

TREYS = TreysEvaluator()


def treys_rank(cards: tuple[int, ...]) -> int:
    """treys rank, 1 = royal flush, lower is better."""
    names = [format_cards((c,)) for c in cards]
    return int(TREYS.evaluate([TreysCard.new(n) for n in names[:2]], [TreysCard.new(n) for n in names[2:]]))


def one_hand_per_class() -> list[tuple[int, ...]]:
    """One 5-card hand for each of the 7,462 classes: every rank multiset, and flushes of 5 ranks."""
    hands = []
    for ranks in combinations_with_replacement(range(13), 5):
        if len(set(ranks)) == 5:
            hands.append(tuple(r * 4 + k % 4 for k, r in enumerate(ranks)))  # suits c d h s c: no flush
            hands.append(tuple(r * 4 for r in ranks))  # all clubs: the flush of these ranks
        elif max(ranks.count(r) for r in ranks) < 5:
            hands.append(tuple(r * 4 + ranks[:k].count(r) for k, r in enumerate(ranks)))
    return hands


def test_all_7462_classes_order_like_treys() -> None:
    hands = one_hand_per_class()
    assert len(hands) == DISTINCT_HANDS
    ours = [evaluate(h) for h in hands]
    theirs = [treys_rank(h) for h in hands]
    assert len(set(theirs)) == DISTINCT_HANDS, "the representatives must be 7,462 distinct classes"
    assert sorted(ours) == list(range(1, DISTINCT_HANDS + 1))
    for mine, reference in zip(ours, theirs, strict=True):
        assert mine == DISTINCT_HANDS + 1 - reference


def test_random_seven_card_hands_agree_with_treys() -> None:
    rng = random.Random(7)
    hands = [tuple(rng.sample(range(52), 7)) for _ in range(20_000)]
    batch = evaluate_many(hands)
    for hand, strength in zip(hands, batch, strict=True):
        assert strength == evaluate(hand) == DISTINCT_HANDS + 1 - treys_rank(hand)


@pytest.mark.parametrize(
    ("cards", "category", "description"),
    [
        ("As2s3s4s5s", Category.STRAIGHT_FLUSH, "Five-high straight flush"),
        ("KhKdKsKc2h9d", Category.FOUR_OF_A_KIND, "Four Kings, Nine kicker"),
        ("7h7d7s2c2d", Category.FULL_HOUSE, "Full house, Sevens full of Deuces"),
        ("Ah9h7h4h2h", Category.FLUSH, "Ace-high flush, 9, 7, 4, 2"),
        ("Ah2c3d4s5h9c", Category.STRAIGHT, "Five-high straight"),
        ("QsQdQc9h2d", Category.THREE_OF_A_KIND, "Three Queens, 9, 2 kickers"),
        ("JsJd4c4h2d", Category.TWO_PAIR, "Two pair, Jacks and Fours, Deuce kicker"),
        ("TsTd8c5h2d", Category.PAIR, "Pair of Tens, 8, 5, 2 kickers"),
        ("As9d8c5h2d", Category.HIGH_CARD, "Ace high, 9, 8, 5, 2"),
    ],
)
def test_categories_and_descriptions(cards: str, category: Category, description: str) -> None:
    ranked = rank_hand(parse_cards(cards))
    assert ranked.category is category
    assert ranked.description == description
    assert len(ranked.best_five) == 5


@pytest.mark.parametrize("cards", ["AsKs", "AsKsQsJsTs9s8s7s", "AsAsKsQsJs"])
def test_needs_five_to_seven_distinct_cards(cards: str) -> None:
    with pytest.raises(EvaluationError):
        evaluate(parse_cards(cards))


# Ids the compiled evaluator would index its tables with unchecked: 100000 crashes the process.
BAD_SEVENS: list[tuple[object, ...]] = [
    (0, 1, 2, 3, 4, 5, 100_000),
    (0, 1, 2, 3, 4, 5, -1),
    (0, 1, 2, 3, 4, 5, 52),
    (0, 0, 0, 0, 0, 0, 0),
    (0, 1, 2, 3, 4, 5, 6.0),
    (0, 1, 2, 3, 4, 5, "6"),
]


@pytest.mark.parametrize("cards", BAD_SEVENS)
def test_bad_card_ids_raise_instead_of_reaching_the_c_evaluator(cards: tuple[int, ...]) -> None:
    with pytest.raises(EvaluationError):
        evaluate(cards)
    with pytest.raises(EvaluationError):
        rank_hand(cards)
    good = (8, 9, 10, 11, 12, 13, 14)
    with pytest.raises(EvaluationError):
        evaluate_many([good, cards])
    with pytest.raises(EvaluationError):
        evaluate_many(iter([cards]))


def test_batch_refuses_hands_of_other_sizes() -> None:
    with pytest.raises(EvaluationError):
        evaluate_many([(0, 1, 2, 3, 4, 5, 6, 7)])
    with pytest.raises(EvaluationError):
        evaluate_many([(0, 1, 2, 3, 4)])
    assert evaluate_many([]) == []
