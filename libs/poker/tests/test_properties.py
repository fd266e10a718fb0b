"""Properties over random hands: chips are conserved, every pot is paid exactly, no illegal action
is ever accepted (and a refused one changes nothing), every sequence of legal actions ends, and a
hand saved and restored at any point plays on exactly like the original; exported to PHH and
replayed, it ends with the same stacks."""

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tablium_poker import FoldRule, Hand, PokerError, TableRules, deck_from_seed
from tablium_poker.phh import dump_phh, history_from_hand, load_phh, replay

MAX_ACTIONS = 400
KINDS = ("fold", "check", "call", "bet", "raise", "all_in", "show", "muck")


@st.composite
def hands(draw: st.DrawFn) -> Hand:
    n = draw(st.integers(2, 10))
    seats = draw(st.lists(st.integers(0, 9), min_size=n, max_size=n, unique=True))
    stacks = {s: draw(st.integers(1, 3_000)) for s in seats}
    rules = TableRules(
        25,
        50,
        ante=draw(st.sampled_from((0, 5, 50))),
        big_blind_ante=draw(st.sampled_from((0, 50))),
        straddle=draw(st.sampled_from((0, 100))),
        rake_percent_bps=draw(st.sampled_from((0, 250, 500, 1000))),
        rake_cap=draw(st.sampled_from((0, 7, 300))),
        no_flop_no_drop=draw(st.booleans()),
        fold_rule=draw(st.sampled_from(FoldRule)),
        auto_showdown=draw(st.booleans()),
    )
    return Hand.start(rules, stacks, draw(st.integers(0, 9)), deck_from_seed(draw(st.binary(min_size=32, max_size=32))))


def _expected_legal(hand: Hand, kind: str, seat: int, amount: int) -> bool:
    """An oracle from legal_actions() and the showdown turn: what the engine must accept."""
    if hand.phase == "showdown":
        if seat != hand.actor_seat or kind not in ("show", "muck"):
            return False
        # Mucking is refused only to the last hand that can claim a pot it is in.
        i = hand.actor
        others = [j for j in range(hand.n) if j != i and not hand.folded[j] and not hand.mucked[j]]
        return kind == "show" or any(hand.committed[j] >= hand.committed[i] for j in others)
    legal = hand.legal_actions()
    if seat != legal.seat:
        return False
    if kind == "fold":
        return legal.fold
    if kind == "check":
        return legal.check
    if kind == "call":
        return legal.call > 0
    if kind == "all_in":
        return legal.max_to > 0 or legal.call == hand.stacks()[seat]
    if kind in ("show", "muck"):
        return False
    bet_kind = "raise" if hand.current_bet else "bet"
    return kind == bet_kind and legal.max_to > 0 and legal.min_to <= amount <= legal.max_to


def _attempt(hand: Hand, kind: str, seat: int, amount: int) -> None:
    if kind in ("bet", "raise"):
        (hand.bet if kind == "bet" else hand.raise_to)(seat, amount)
    else:
        getattr(hand, kind)(seat)


def _legal_move(hand: Hand, data: st.DataObject) -> tuple[str, int, int]:
    """A random legal move: (method name, seat, amount)."""
    if hand.phase == "showdown":
        seat = hand.actor_seat
        assert seat is not None
        return data.draw(st.sampled_from(["show", "muck"] if hand.can_muck(seat) else ["show"])), seat, 0
    legal = hand.legal_actions()
    choices = ["check_or_call", "act_default"] + ["fold"] * legal.fold + ["bet_or_raise_to"] * (legal.max_to > 0)
    choice = data.draw(st.sampled_from(choices))
    amount = data.draw(st.integers(legal.min_to, legal.max_to)) if choice == "bet_or_raise_to" else 0
    return choice, legal.seat, amount


def _play(hand: Hand, move: tuple[str, int, int]) -> None:
    name, seat, amount = move
    method = getattr(hand, name)
    method(seat, amount) if name == "bet_or_raise_to" else method(seat)


def _pots_paid(events: list[Any]) -> list[tuple[int, int]]:
    """(pot prize, sum of the wins that follow it) for every pot event."""
    paid: list[tuple[int, int]] = []
    for event in events:
        if event.kind == "pot":
            paid.append((event.amount, 0))
        elif event.kind == "win":
            prize, won = paid[-1]
            paid[-1] = (prize, won + event.amount)
    return paid


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hand=hands(), data=st.data())
def test_random_hands_conserve_chips_pay_pots_and_refuse_illegal_actions(hand: Hand, data: st.DataObject) -> None:
    before = sum(hand.stacks_before)
    restore_at = data.draw(st.integers(0, 30))
    copy: Hand | None = None
    for step in range(MAX_ACTIONS):
        if hand.is_finished:
            break
        if step == restore_at:
            copy = Hand.from_dict(json.loads(json.dumps(hand.to_dict())))
        # Sometimes first try anything at all: it must be accepted exactly when it is legal.
        if data.draw(st.integers(0, 3)) == 0:
            kind = data.draw(st.sampled_from(KINDS))
            seat = data.draw(st.sampled_from((*hand.seats, 42)))
            amount = data.draw(st.integers(-1, 4_000))
            expected = _expected_legal(hand, kind, seat, amount)
            snapshot = hand.to_dict()
            try:
                _attempt(hand, kind, seat, amount)
            except PokerError:
                assert not expected, f"refused a legal {kind} by seat {seat} ({amount})"
                assert hand.to_dict() == snapshot
            else:
                assert expected, f"accepted an illegal {kind} by seat {seat} ({amount})"
                if copy is not None:
                    _attempt(copy, kind, seat, amount)
                continue
        move = _legal_move(hand, data)
        _play(hand, move)
        if copy is not None:
            _play(copy, move)
    assert hand.is_finished, "a sequence of legal actions must end the hand"
    rake = sum(hand.raked)
    assert sum(hand.stack) + rake == before
    assert sum(hand.won) + rake == hand.total_pot()
    paid = _pots_paid(hand.events)
    assert paid
    assert all(prize == won for prize, won in paid), paid
    assert sum(prize for prize, _ in paid) + rake == hand.total_pot()
    assert sum(e.amount for e in hand.events if e.kind == "rake") == rake
    if hand.rules.rake_cap:
        assert rake <= hand.rules.rake_cap
    if hand.street == 0 and hand.rules.no_flop_no_drop:
        assert rake == 0
    assert min(hand.stack) >= 0
    if copy is not None:
        assert copy.to_dict() == hand.to_dict()
    restored = Hand.from_dict(hand.to_dict())
    assert restored.to_dict() == hand.to_dict()
    # PHH has no rake, and antes there are uniform or a big-blind ante, not both.
    if not hand.rules.rake_percent_bps and not (hand.rules.ante and hand.rules.big_blind_ante):
        replayed = replay(load_phh(dump_phh(history_from_hand(hand))))
        assert replayed.stack == hand.stack
        assert replayed.board == hand.board
