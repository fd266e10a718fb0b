"""Hand-written cases for the rules the PHH dev set does not cover: heads-up, 9-max, side pots,
reopening, fold-when-free, rake, straddle, tournament hooks, persistence, views and bad input."""

import json

import pytest

from tablium_poker import (
    BlindPlan,
    FoldRule,
    Hand,
    HandFinished,
    IllegalAction,
    InvalidAmount,
    InvalidSetup,
    NotYourTurn,
    TableRules,
    parse_cards,
)

RULES = TableRules(50, 100)


def stacked(holes: list[str], board: str = "2c7h9h3s4d") -> list[int]:
    """A deck that deals ``holes`` (clockwise from the first seat left of the button) and ``board``."""
    n = len(holes)
    cards = [parse_cards(h) for h in holes]
    wanted = [c[0] for c in cards] + [c[1] for c in cards]
    b = parse_cards(board)
    used = set(wanted) | set(b)
    spare = [c for c in range(52) if c not in used]
    return [*wanted, spare[0], b[0], b[1], b[2], spare[1], b[3], spare[2], b[4], *spare[3:]][: 2 * n + 8 + 10]


def test_heads_up_button_posts_small_blind_acts_first_preflop_last_after() -> None:
    hand = Hand.start(RULES, {3: 1000, 7: 1000}, 7, stacked(["AsAd", "KsKd"]))
    assert [(e.kind, e.seat, e.amount) for e in hand.events if "blind" in e.kind] == [
        ("small_blind", 7, 50),
        ("big_blind", 3, 100),
    ]
    assert hand.actor_seat == 7
    hand.call(7)
    assert hand.actor_seat == 3
    hand.check(3)
    assert hand.street == 1
    assert hand.actor_seat == 3  # big blind first after the flop
    hand.check(3)
    assert hand.actor_seat == 7


def test_nine_handed_three_all_ins_make_exact_side_pots() -> None:
    stacks = {1: 100, 2: 300, 3: 600, 4: 5000, 5: 5000, 6: 5000, 7: 5000, 8: 5000, 9: 5000}
    holes = ["2c3d", "4c5d", "AhAd", "KhKd", "QhQd", "7c8d", "7h8h", "9c9d", "6s6h"]
    hand = Hand.start(RULES, stacks, 9, stacked(holes, "AsKcQs3h4s"))
    # seats 1=SB (100, all-in after posting 50 + call), 2=BB
    hand.raise_to(3, 600)  # all-in
    for seat in (4, 5, 6, 7, 8, 9):
        hand.fold(seat) if seat in (6, 7, 8) else hand.call(seat)
    hand.call(1)  # all-in for 100
    hand.call(2)  # all-in for 300
    hand.check(4)
    hand.check(5)
    hand.check(9)
    for _ in range(2):
        for seat in (4, 5, 9):
            hand.check(seat)
    assert hand.is_finished
    # Pots: main 100 x 6 = 600 (seats 1..5, 9), side 1: 200 x 5 = 1000, side 2: 300 x 4 = 1200.
    assert [p.amount for p in hand.pots()] == [600, 1000, 1200]
    assert [p.seats for p in hand.pots()] == [(1, 2, 3, 4, 5, 9), (2, 3, 4, 5, 9), (3, 4, 5, 9)]
    assert hand.stacks()[3] == 600 + 1000 + 1200  # aces full wins every pot
    assert sum(hand.stack) == sum(stacks.values())


def test_uncalled_bet_is_returned() -> None:
    hand = Hand.start(RULES, {0: 1000, 1: 1000, 2: 1000}, 2, stacked(["AsAd", "KsKd", "QsQd"]))
    hand.raise_to(2, 800)
    hand.fold(0)
    events = hand.fold(1)
    assert ("uncalled_bet_returned", 2, 700) in [(e.kind, e.seat, e.amount) for e in events]
    assert hand.stacks() == {0: 950, 1: 900, 2: 1150}


def test_min_raise_is_last_full_raise_and_short_all_in_does_not_reopen() -> None:
    stacks = {0: 5000, 1: 5000, 2: 5000, 3: 450}
    hand = Hand.start(RULES, stacks, 3, stacked(["AsAd", "KsKd", "QsQd", "JsJd"]))
    hand.raise_to(2, 300)  # a raise of 200
    assert hand.legal_actions().min_to == 450  # seat 3 may go all-in short (min clipped to stack)
    hand.all_in(3)  # to 450: a raise of 150 < 200, incomplete
    assert hand.legal_actions().min_to == 650  # the minimum raise is still the last full raise
    hand.call(0)
    hand.call(1)
    # Seat 2 already acted and faces only 150 more: the betting is not reopened.
    assert not hand.can_raise_to(2, 650)
    with pytest.raises(IllegalAction, match="does not reopen"):
        hand.raise_to(2, 650)
    assert hand.legal_actions().max_to == 0
    hand.call(2)
    assert hand.street == 1


def test_fold_when_check_is_free_is_refused_or_becomes_a_check() -> None:
    deck = stacked(["AsAd", "KsKd", "QsQd"])
    hand = Hand.start(RULES, {0: 1000, 1: 1000, 2: 1000}, 2, deck)
    hand.call(2)
    hand.call(0)
    assert not hand.can_fold(1)
    with pytest.raises(IllegalAction, match="checking is free"):
        hand.fold(1)
    lenient = Hand.start(TableRules(50, 100, fold_rule=FoldRule.CHECK), {0: 1000, 1: 1000, 2: 1000}, 2, deck)
    lenient.call(2)
    lenient.call(0)
    assert next(e.kind for e in lenient.fold(1)) == "check"
    assert not lenient.folded[1]


def test_time_out_checks_else_folds() -> None:
    hand = Hand.start(RULES, {0: 1000, 1: 1000, 2: 1000}, 2, stacked(["AsAd", "KsKd", "QsQd"]))
    assert hand.act_default(2)[0].kind == "fold"
    hand.call(0)
    assert hand.act_default(1)[0].kind == "check"


def test_rake_percentage_cap_no_flop_no_drop_and_exact_attribution() -> None:
    rules = TableRules(50, 100, rake_percent_bps=500, rake_cap=30)
    preflop = Hand.start(rules, {0: 1000, 1: 1000, 2: 1000}, 2, stacked(["AsAd", "KsKd", "QsQd"]))
    preflop.raise_to(2, 300)
    preflop.fold(0)
    preflop.fold(1)
    assert sum(preflop.raked) == 0  # no flop, no drop

    hand = Hand.start(rules, {0: 1000, 1: 1000, 2: 1000}, 2, stacked(["AsAd", "KsKd", "QsQd"]))
    hand.call(2)
    hand.call(0)
    hand.check(1)
    hand.bet(0, 100)
    hand.call(1)
    hand.fold(2)
    for _ in range(2):
        hand.check(0)
        hand.check(1)
    # Pot 500: 5% = 25 (under the cap of 30), paid in proportion 200/200/100 -> 10/10/5.
    assert hand.rake_by_seat() == {0: 10, 1: 10, 2: 5}
    assert sum(hand.stack) + sum(hand.raked) == 3000
    capped = Hand.start(rules, {0: 5000, 1: 5000, 2: 5000}, 2, stacked(["AsAd", "KsKd", "QsQd"]))
    capped.raise_to(2, 1000)
    capped.call(0)
    capped.call(1)
    for _ in range(3):
        for seat in (0, 1, 2):
            capped.check(seat)
    assert capped.rake_by_seat() == {0: 10, 1: 10, 2: 10}
    assert sum(capped.stack) + 30 == 15000


def test_split_pot_odd_chip_goes_to_first_winner_left_of_button() -> None:
    rules = TableRules(25, 50)
    hand = Hand.start(rules, {0: 1000, 1: 1000, 2: 1000}, 0, stacked(["7c8d", "2d3c", "9s9h"], "AsKsQdJcTh"))
    hand.call(0)  # the button limps
    hand.fold(1)  # the small blind's 25 stays in: the pot is 125
    hand.check(2)
    for _ in range(3):
        hand.check(2)
        hand.check(0)
    # Both play the board's straight; the odd chip goes to seat 2, first clockwise from the button.
    assert [(e.seat, e.amount) for e in hand.events if e.kind == "win"] == [(2, 63), (0, 62)]


def test_straddle_makes_the_minimum_raise_the_straddle() -> None:
    rules = TableRules(50, 100, straddle=200)
    hand = Hand.start(rules, dict.fromkeys(range(5), 5000), 4, stacked(["AsAd", "KsKd", "QsQd", "JsJd", "TsTd"]))
    assert hand.actor_seat == 3
    assert hand.legal_actions().min_to == 400


def test_dead_small_blind_and_missed_blind_hooks() -> None:
    plan = BlindPlan(None, 1, dead_posts={2: 50}, live_posts={2: 100})
    hand = Hand.start(RULES, {1: 1000, 2: 1000, 3: 1000}, 0, stacked(["AsAd", "KsKd", "QsQd"]), plan)
    assert [(e.kind, e.seat, e.amount) for e in hand.events if e.amount and e.kind != "hole_cards"] == [
        ("dead_blind", 2, 50),
        ("big_blind", 1, 100),
        ("live_blind", 2, 100),
    ]
    assert hand.total_pot() == 250
    assert hand.actor_seat == 2  # next after the big blind; the live post lets it check
    assert hand.legal_actions().check


def test_serialise_restore_mid_hand_continues_identically() -> None:
    hand = Hand.start(RULES, {0: 1000, 1: 2000, 2: 3000}, 2, stacked(["AsAd", "KsKd", "QsQd"]))
    hand.raise_to(2, 300)
    saved = json.loads(json.dumps(hand.to_dict()))
    copy = Hand.from_dict(saved)
    for h in (hand, copy):
        h.call(0)
        h.call(1)
        h.bet(0, 200)
        h.call(1)
        h.fold(2)
    assert copy.to_dict() == hand.to_dict()
    with pytest.raises(InvalidSetup):
        Hand.from_dict({"rules": {}})


def test_views_hide_cards_the_viewer_may_not_see() -> None:
    hand = Hand.start(RULES, {0: 1000, 1: 1000, 2: 1000}, 2, stacked(["AsAd", "KsKd", "QsQd"]))
    mine = hand.view(0)
    assert [p["hole_cards"] for p in mine["players"]] == ["AsAd", None, None]
    spectator = hand.view(None)
    assert all(p["hole_cards"] is None for p in spectator["players"])
    assert all(not e["cards"] for e in spectator["events"] if e["kind"] == "hole_cards")
    assert spectator["legal_actions"] is None
    assert hand.view(2)["legal_actions"]["call"] == 100
    json.dumps(spectator)
    hand.raise_to(2, 1000)
    hand.call(0)
    hand.fold(1)  # all-in showdown: both hands are tabled
    shown = hand.view(None)
    assert [p["hole_cards"] for p in shown["players"]] == ["AsAd", None, "QsQd"]
    assert all(not e["cards"] for e in shown["events"] if e["kind"] == "burn")


def test_bad_actions_raise_typed_errors_and_leave_state_unchanged() -> None:
    hand = Hand.start(RULES, {0: 1000, 1: 1000, 2: 1000}, 2, stacked(["AsAd", "KsKd", "QsQd"]))
    before = hand.to_dict()
    attempts = [
        (NotYourTurn, lambda: hand.call(0)),
        (NotYourTurn, lambda: hand.call(9)),
        (IllegalAction, lambda: hand.check(2)),
        (IllegalAction, lambda: hand.bet(2, 300)),
        (InvalidAmount, lambda: hand.raise_to(2, 150)),
        (InvalidAmount, lambda: hand.raise_to(2, 1001)),
        (InvalidAmount, lambda: hand.raise_to(2, 250.0)),  # type: ignore[arg-type]
        (IllegalAction, lambda: hand.show(2)),
    ]
    for error, attempt in attempts:
        with pytest.raises(error):
            attempt()
        assert hand.to_dict() == before
    hand.raise_to(2, 1000)
    hand.fold(0)
    hand.fold(1)
    with pytest.raises(HandFinished):
        hand.check(2)
    with pytest.raises(HandFinished):
        hand.legal_actions()


@pytest.mark.parametrize(
    ("stacks", "deck"),
    [
        ({0: 100}, list(range(52))),
        ({0: 100, 1: 0}, list(range(52))),
        ({0: 100, 1: 100}, [0] * 52),
        (dict.fromkeys(range(11), 100), list(range(52))),
        ({0: 100, 1: 100}, list(range(5))),
    ],
)
def test_bad_setup_is_refused(stacks: dict[int, int], deck: list[int]) -> None:
    with pytest.raises(InvalidSetup):
        Hand.start(RULES, stacks, 0, deck)


def test_manual_showdown_order_and_muck() -> None:
    rules = TableRules(50, 100, auto_showdown=False)
    hand = Hand.start(rules, {0: 1000, 1: 1000, 2: 1000}, 2, stacked(["AsAd", "KsKd", "QsQd"]))
    hand.call(2)
    hand.call(0)
    hand.check(1)
    hand.bet(0, 100)
    hand.call(1)
    hand.call(2)
    for _ in range(2):
        for seat in (0, 1, 2):
            hand.check(seat)
    with pytest.raises(NotYourTurn):
        hand.show(1)
    hand.show(0)  # nobody bet on the river: the first seat left of the button shows first
    hand.muck(1)
    assert not hand.can_muck(2) or hand.can_show(2)
    hand.show(2)
    assert hand.is_finished
    assert hand.stacks() == {0: 1400, 1: 800, 2: 800}


def test_three_way_split_gives_every_odd_chip_to_the_first_winner_left_of_the_button() -> None:
    # Stated rule (PokerKit; TDA "odd chip(s)"): the whole remainder goes to the first winner.
    rules = TableRules(20, 50)
    holes = ["7c8d", "2d3c", "4h5h", "6c6d"]
    hand = Hand.start(rules, dict.fromkeys(range(4), 1000), 3, stacked(holes, "AsKsQdJcTh"))
    hand.call(2)
    hand.call(3)
    hand.fold(0)  # the small blind's 20 stays in: the pot is 170 = 3 x 56 + 2
    hand.check(1)
    for _ in range(3):
        for seat in (1, 2, 3):
            hand.check(seat)
    assert [(e.seat, e.amount) for e in hand.events if e.kind == "win"] == [(1, 58), (2, 56), (3, 56)]


def test_three_handed_table_posts_no_straddle() -> None:
    rules = TableRules(50, 100, straddle=200)
    hand = Hand.start(rules, dict.fromkeys(range(3), 5000), 2, stacked(["AsAd", "KsKd", "QsQd"]))
    assert not [e for e in hand.events if e.kind == "straddle"]
    assert hand.actor_seat == 2
    assert hand.legal_actions().min_to == 200


def test_time_out_at_a_manual_showdown_shows() -> None:
    rules = TableRules(50, 100, auto_showdown=False)
    hand = Hand.start(rules, {0: 1000, 1: 1000}, 1, stacked(["AsAd", "KsKd"]))
    hand.all_in(1)
    hand.call(0)
    assert hand.actor_seat == 1  # the last aggressor shows first
    assert [e.kind for e in hand.act_default(1)] == ["show"]
    with pytest.raises(IllegalAction, match="only the two cards it was dealt"):
        hand.show(0, [99, 100])
    hand.act_default(0)
    assert hand.is_finished
    assert hand.stacks() == {0: 2000, 1: 0}


def test_heads_up_all_in_for_less_than_the_big_blind() -> None:
    # The button has 30 chips: it posts 30 of its 50 small blind; the big blind is not asked to act.
    hand = Hand.start(RULES, {0: 1000, 1: 30}, 1, stacked(["AsAd", "KsKd"]))
    assert hand.is_finished
    assert ("uncalled_bet_returned", 0, 70) in [(e.kind, e.seat, e.amount) for e in hand.events]
    assert hand.stacks() == {0: 1030, 1: 0}


@pytest.mark.parametrize(
    ("rules_stacks", "message"),
    [
        ({0: 100, 1: 100.0}, "int stack"),
        ({0: 100, 1: True}, "int stack"),
        ({0: 100, 1: 2**63}, "int stack"),
        ({0: 100, -1: 100}, "ints >= 0"),
    ],
)
def test_stacks_must_be_int_chip_amounts(rules_stacks: dict[int, int], message: str) -> None:
    with pytest.raises(InvalidSetup, match=message):
        Hand.start(RULES, rules_stacks, 0, list(range(52)))


def test_deck_ids_must_be_ints() -> None:
    with pytest.raises(InvalidSetup, match="distinct card ids"):
        Hand.start(RULES, {0: 100, 1: 100}, 0, [float(c) for c in range(52)])  # type: ignore[misc]


@pytest.mark.parametrize(
    ("rules", "plan", "message"),
    [
        (RULES, BlindPlan(1, 1), "different seats"),
        (RULES, BlindPlan(1, 2, straddle_seat=0), "needs a table with a straddle"),
        (RULES, BlindPlan(1, 2, dead_posts={0: 0}), "positive int"),
        (RULES, BlindPlan(1, 7), "not dealt in"),
    ],
)
def test_inconsistent_blind_plans_are_refused(rules: TableRules, plan: BlindPlan, message: str) -> None:
    with pytest.raises(InvalidSetup, match=message):
        Hand.start(rules, dict.fromkeys(range(3), 1000), 2, list(range(52)), plan)


@pytest.mark.parametrize(
    "fields",
    [
        {"small_blind": 50.0},
        {"big_blind": True},
        {"ante": -1},
        {"rake_cap": 2**63},
        {"no_flop_no_drop": "yes"},
        {"fold_rule": "refuse"},
    ],
)
def test_table_rules_refuse_non_int_amounts(fields: dict[str, object]) -> None:
    values: dict[str, object] = {"small_blind": 50, "big_blind": 100, **fields}
    with pytest.raises(InvalidSetup):
        TableRules(**values)  # type: ignore[arg-type]


def test_dead_button_with_the_default_plan() -> None:
    # Seat 0 holds the button but nobody sits there: blinds go to the next seats clockwise.
    hand = Hand.start(RULES, dict.fromkeys((1, 2, 3, 4), 1000), 0, stacked(["AsAd", "KsKd", "QsQd", "JsJd"]))
    assert [(e.kind, e.seat) for e in hand.events if e.kind.endswith("blind")] == [
        ("small_blind", 1),
        ("big_blind", 2),
    ]
    assert hand.actor_seat == 3


def test_two_short_all_ins_that_add_up_to_a_full_raise_reopen_the_betting() -> None:
    stacks = {0: 5000, 1: 5000, 2: 250, 3: 300}
    hand = Hand.start(RULES, stacks, 3, stacked(["AsAd", "KsKd", "QsQd", "JsJd"]))
    for seat in (2, 3, 0):
        hand.call(seat)
    hand.check(1)
    hand.bet(0, 100)
    hand.call(1)
    hand.all_in(2)  # to 150: 50 more, not a full raise
    hand.all_in(3)  # to 200: 50 more again, not a full raise
    # Seat 0 already acted but now faces 100 more, a full raise in total: it may raise again.
    assert hand.legal_actions().seat == 0
    assert (hand.legal_actions().min_to, hand.legal_actions().max_to) == (300, 4900)


def test_rake_is_taken_per_pot_main_pot_first_and_attributed_to_who_paid() -> None:
    rules = TableRules(50, 100, rake_percent_bps=1000, rake_cap=100)
    hand = Hand.start(rules, {0: 300, 1: 1000, 2: 1000}, 2, stacked(["AsAd", "KsKd", "QsQd"]))
    hand.call(2)
    hand.all_in(0)  # to 300
    hand.call(1)
    hand.call(2)
    hand.bet(1, 200)
    hand.call(2)
    for _ in range(2):
        hand.check(1)
        hand.check(2)
    # Main pot 900: 10% = 90, 30 from each; side pot 400: 40, capped to the 10 left, 5 each.
    assert [(e.seat, e.amount) for e in hand.events if e.kind == "pot"] == [(0, 810), (1, 390)]
    assert hand.rake_by_seat() == {0: 30, 1: 35, 2: 35}
    assert hand.stacks() == {0: 810, 1: 890, 2: 500}
