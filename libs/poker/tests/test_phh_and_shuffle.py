"""Malformed or illegal PHH histories fail with PhhError naming the problem; the seeded shuffle."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tablium_poker import BlindPlan, Hand, PhhError, TableRules, commitment, deck_from_seed, format_cards, new_seed
from tablium_poker.errors import InvalidSetup
from tablium_poker.phh import dump_phh, history_from_hand, load_phh, replay

HEADER = """variant = 'NT'
antes = [0, 0, 0]
blinds_or_straddles = [50, 100, 0]
min_bet = 100
starting_stacks = [{stacks}]
"""


def phh(actions: list[str], stacks: str = "1000, 1000, 1000") -> str:
    return HEADER.format(stacks=stacks) + f"actions = {actions!r}\n"


ONE_PLAYER = HEADER.replace("0, 0, 0", "0").replace("50, 100, 0", "50").format(stacks="1000") + "actions = []"
DEAL = ["d dh p1 AsAd", "d dh p2 KsKd", "d dh p3 ????"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("variant = 'NT'\nantes = [", "not valid TOML"),
        (phh(DEAL).replace("'NT'", "'FT'"), "variant 'NT'"),
        (phh(DEAL).replace("min_bet = 100\n", ""), "missing required field 'min_bet'"),
        (phh(DEAL, "1000, 1000.5, 1000"), "not a whole number of chips"),
        (phh(DEAL, "1000, 1000"), "antes has 3 entries for 2 players"),
        (phh(DEAL).replace("antes = [0, 0, 0]", "antes = [5, 0, 1]"), "big-blind ante only"),
        (phh([*DEAL, "p3 xyz"]), "unsupported operation"),
        (phh([*DEAL, "p4 f"]), "not a player"),
        (phh([*DEAL, "p3 cbr 12.5"]), "not a whole number of chips"),
        (phh([*DEAL, "p3 cbr 150"]), "must be to 200..1000"),
        (phh([*DEAL, "p1 f"]), "out of turn"),
        (phh([*DEAL, "p3 cc", "p1 cc", "p2 f"]), "checking is free"),
        (phh([*DEAL, "p3 f", "p1 f", "p2 f"]), "the hand is over"),
        (phh([*DEAL, "p3 cc"]), "the actions end before the hand does"),
        (phh([*DEAL, "d db AhKhQh"]), "dealt before the betting round ended"),
        (phh(["d dh p1 AsAd", "d dh p2 AsKd", "d dh p3 ????"]), "dealt twice"),
        (phh(["d dh p1 AsXd"]), "not a card"),
        (phh([*DEAL, "d dh p1 AhAc"]), "dealt hole cards twice"),
        (phh([*DEAL, "p3 cc", "p1 cc", "p2 cc", "d db 2c7h??"]), "board cards must be known"),
        (phh([*DEAL, "p3 cc", "p1 cc", "p2 cc", "d db 2c7h"]), "flop of 3 cards"),
        (phh([*DEAL, "p3 cc", "p1 cc", "p2 cc", "d db 2c7h9h", "d db 3s4s"]), "flop of 3 cards"),
        (phh([*DEAL, "p3 cc", "p1 cc", "p2 cc", "d db 2c7h9h", "d db 3s", "d db 4s", "d db 5s"]), "flop of 3"),
        (phh(DEAL, "1000, nan, 1000"), "not a chip amount"),
        (phh(DEAL, "1000, inf, 1000"), "not a chip amount"),
        (phh(DEAL, "1000, 1e400000, 1000"), "not a chip amount"),
        (phh(DEAL, "1000, 99999999999999999999, 1000"), "more chips than the engine holds"),
        (phh(DEAL, "1000, 9223372036854775808.0, 1000"), "more chips than the engine holds"),
        (phh([*DEAL, "p3 cbr NaN"]), "not a chip amount"),
        (phh([*DEAL, "p3 cbr -300"]), "must be to 200..1000"),
        (ONE_PLAYER, "1 players"),
    ],
)
def test_bad_histories_raise_phh_errors(text: str, message: str) -> None:
    with pytest.raises(PhhError, match=message):
        replay(load_phh(text))


VALID = phh([*DEAL, "p3 cbr 300", "p1 cc", "p2 f", "d db 2c7h9h", "p1 cbr 200", "p3 f"])
TOKENS = ["nan", "inf", "-1", "0", "1e400", "[]", "[1]", '"x"', "true", "1.5", "p0", "p4", "????", "AsAs", "cbr", "sm"]


def test_the_history_to_mutate_is_valid() -> None:
    assert replay(load_phh(VALID)).stack == [1400, 900, 700]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), st.integers(0, len(VALID)), st.sampled_from(TOKENS)), max_size=4))
def test_mutated_histories_fail_only_with_phh_errors(edits: list[tuple[int, int, str]]) -> None:
    text = VALID
    for kind, at, token in edits:
        if kind == 0:
            text = text[:at] + text[at + 3 :]
        elif kind == 1:
            text = text[:at] + token + text[at:]
        else:
            text = text[:at] + token + text[at + len(token) :]
    try:
        hand = replay(load_phh(text))
    except PhhError:
        return
    assert sum(hand.stack) == sum(hand.stacks_before)


def test_integral_decimals_are_whole_chips() -> None:
    history = load_phh(phh([*DEAL, "p3 cbr 300.0", "p1 f", "p2 f"], "1000.0, 1000, 1000"))
    assert replay(history).stack == [950, 900, 1150]


def test_unknown_hole_cards_revealed_at_showdown() -> None:
    actions = [
        *DEAL,
        "p3 cc",
        "p1 cc",
        "p2 cc",
        "d db 2c7h9h",
        "p1 cc",
        "p2 cc",
        "p3 cc",
        "d db 3s",
        "p1 cc",
        "p2 cc",
        "p3 cc",
        "d db 4d",
        "p1 cc",
        "p2 cc",
        "p3 cc",
        "p1 sm AsAd",
        "p2 sm",
        "p3 sm 5c6c",
    ]
    hand = replay(load_phh(phh(actions)))
    assert hand.stack == [900, 900, 1200]  # p3's revealed straight wins
    again = replay(load_phh(dump_phh(history_from_hand(hand))))
    assert again.stack == hand.stack


def test_shown_cards_must_match_dealt_cards() -> None:
    actions = [
        *DEAL,
        "p3 f",
        "p1 cc",
        "p2 cc",
        "d db 2c7h9h",
        "p1 cc",
        "p2 cc",
        "d db 3s",
        "p1 cc",
        "p2 cc",
        "d db 4d",
        "p1 cc",
        "p2 cc",
        "p1 sm AsAh",
    ]
    with pytest.raises(PhhError, match="not the cards dealt"):
        replay(load_phh(phh(actions)))


def test_deck_is_a_pure_function_of_the_seed() -> None:
    seed = bytes(range(32))
    deck = deck_from_seed(seed)
    assert deck == deck_from_seed(seed)
    assert sorted(deck) == list(range(52))
    assert deck_from_seed(seed, 20) == deck[:20]
    assert deck_from_seed(bytes(32)) != deck
    assert commitment(seed) == "630dcd2966c4336691125448bbb25b4ff412a49c732db2c8abc1b8581bd710dd"
    # Pinned: a deal committed to yesterday must rebuild the same way tomorrow.
    assert format_cards(deck) == (
        "2cJd6dJc7cKd4cKs6h6c8c3c9cJsAs5h8sTsAc7h3dJh4sQs5dAd5c3h4h7s2h2d3sQhAh6s9d9hThKc5s2sKhTcTd4d8d7d9s8hQcQd"
    )
    assert len(new_seed()) == 32
    assert new_seed() != new_seed()
    with pytest.raises(InvalidSetup):
        deck_from_seed(b"short")
    with pytest.raises(InvalidSetup):
        deck_from_seed(seed, 53)


def test_shuffle_is_not_visibly_biased() -> None:
    # Over 5,200 seeds each card should lead the deck about 100 times.
    counts = [0] * 52
    for k in range(5_200):
        counts[deck_from_seed(k.to_bytes(32, "big"), 1)[0]] += 1
    assert min(counts) > 55
    assert max(counts) < 150


@pytest.mark.parametrize(
    "plan",
    [BlindPlan(None, 1), BlindPlan(0, 1, dead_posts={2: 50}), BlindPlan(1, 2), BlindPlan(0, 1, live_posts={2: 100})],
)
def test_export_refuses_blinds_phh_cannot_record(plan: BlindPlan) -> None:
    hand = Hand.start(TableRules(50, 100), dict.fromkeys(range(3), 1000), 2, deck_from_seed(bytes(32)), plan)
    with pytest.raises(PhhError, match="PHH"):
        history_from_hand(hand)


def test_export_accepts_a_short_blind_and_a_bb_ante_that_took_the_big_blind() -> None:
    rules = TableRules(50, 100, big_blind_ante=100)
    hand = Hand.start(rules, {0: 30, 1: 100, 2: 1000}, 2, deck_from_seed(bytes(32)))
    assert [e.kind for e in hand.events if "blind" in e.kind] == ["big_blind_ante", "small_blind"]
    history = history_from_hand(hand)
    assert history.antes == (0, 100, 0)
    assert history.ante_trimming_status is False
