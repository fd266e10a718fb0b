"""Properties over random hands: chips are conserved, every pot is paid exactly, no illegal action
is ever accepted (and a refused one changes nothing), and every sequence of legal actions ends."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tablium_poker import Hand, PokerError, TableRules, deck_from_seed

MAX_ACTIONS = 400


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
    )
    return Hand.start(rules, stacks, draw(st.integers(0, 9)), deck_from_seed(draw(st.binary(min_size=32, max_size=32))))


def _expected_legal(hand: Hand, kind: str, seat: int, amount: int) -> bool:
    """An oracle from legal_actions(): what the engine must accept."""
    legal = hand.legal_actions()
    if seat != legal.seat:
        return False
    if kind == "fold":
        return legal.call > 0
    if kind == "check":
        return legal.check
    if kind == "call":
        return legal.call > 0
    bet_kind = "raise" if hand.current_bet else "bet"
    return kind == bet_kind and legal.max_to > 0 and legal.min_to <= amount <= legal.max_to


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hand=hands(), data=st.data())
def test_random_hands_conserve_chips_pay_pots_and_refuse_illegal_actions(hand: Hand, data: st.DataObject) -> None:
    before = sum(hand.stacks_before)
    for _ in range(MAX_ACTIONS):
        if hand.is_finished:
            break
        legal = hand.legal_actions()
        # Sometimes first try anything at all: it must be accepted exactly when it is legal.
        if data.draw(st.integers(0, 3)) == 0:
            kind = data.draw(st.sampled_from(("fold", "check", "call", "bet", "raise")))
            seat = data.draw(st.sampled_from((*hand.seats, 42)))
            amount = data.draw(st.integers(0, 4_000))
            expected = _expected_legal(hand, kind, seat, amount)
            snapshot = hand.to_dict()
            action = getattr(hand, kind if kind in ("fold", "check", "call", "bet") else "raise_to")
            try:
                action(seat, amount) if kind in ("bet", "raise") else action(seat)
            except PokerError:
                assert not expected, f"refused a legal {kind} by seat {seat} ({amount}): {legal}"
                assert hand.to_dict() == snapshot
            else:
                assert expected, f"accepted an illegal {kind} by seat {seat} ({amount}): {legal}"
                continue
        choices = ["cc"] + ["f"] * (legal.call > 0) + ["r"] * (legal.max_to > 0)
        choice = data.draw(st.sampled_from(choices))
        if choice == "f":
            hand.fold(legal.seat)
        elif choice == "cc":
            hand.check_or_call(legal.seat)
        else:
            hand.bet_or_raise_to(legal.seat, data.draw(st.integers(legal.min_to, legal.max_to)))
    assert hand.is_finished, "a sequence of legal actions must end the hand"
    rake = sum(hand.raked)
    assert sum(hand.stack) + rake == before
    assert sum(hand.won) + rake == hand.total_pot()
    assert sum(e.amount for e in hand.events if e.kind == "rake") == rake
    assert sum(e.amount for e in hand.events if e.kind == "win") == sum(hand.won)
    if hand.rules.rake_cap:
        assert rake <= hand.rules.rake_cap
    if hand.street == 0 and hand.rules.no_flop_no_drop:
        assert rake == 0
    assert min(hand.stack) >= 0
    restored = Hand.from_dict(hand.to_dict())
    assert restored.to_dict() == hand.to_dict()
