"""Pure rules: chips are never created or destroyed by a hand, and results/VPIP/PFR are consistent."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st
from tablium_lobby.domain.protocol import event_messages, visible_cards
from tablium_lobby.domain.stakes import Stakes
from tablium_lobby.domain.summary import summarize

from tablium_kit.errors import InvalidInput
from tablium_poker import Hand, deck_from_seed


def play_random(hand: Hand, rng: random.Random) -> None:
    while not hand.is_finished:
        legal = hand.legal_actions()
        roll = rng.random()
        if legal.max_to and roll < 0.3:
            hand.bet_or_raise_to(legal.seat, rng.randint(legal.min_to, legal.max_to))
        elif legal.fold and roll < 0.45:
            hand.fold(legal.seat)
        elif legal.check:
            hand.check(legal.seat)
        else:
            hand.call(legal.seat)


@settings(max_examples=200, deadline=None)
@given(
    stacks=st.lists(st.integers(1, 10**12), min_size=2, max_size=10),
    big_blind=st.integers(2, 10**6),
    rake_bps=st.integers(0, 1_000),
    rake_cap=st.integers(0, 10**6),
    seed=st.binary(min_size=32, max_size=32),
    choices=st.integers(0, 2**32),
)
def test_a_hand_conserves_chips_and_reports_them(
    stacks: list[int], big_blind: int, rake_bps: int, rake_cap: int, seed: bytes, choices: int
) -> None:
    stakes = Stakes(big_blind // 2 or 1, big_blind, 0, 10, 1, 100, rake_bps, rake_cap)
    seats = {seat * 1: stack for seat, stack in enumerate(stacks)}
    hand = Hand.start(stakes.rules(), seats, 0, deck_from_seed(seed))
    play_random(hand, random.Random(choices))
    results = summarize(hand)
    rake = sum(r.rake for r in results)
    assert sum(r.stack_before for r in results) == sum(stacks)
    assert sum(r.stack_after for r in results) + rake == sum(stacks)
    assert rake_cap == 0 or rake <= rake_cap
    assert all(r.pfr <= r.vpip for r in results), "a preflop raise is voluntary"
    if hand.street == 0:
        assert rake == 0, "no flop, no drop"
    # Nobody is told another seat's hole cards outside a showdown.
    players = {seat: f"p{seat}" for seat in seats}
    for outgoing in event_messages(hand.events, players, 1):
        if outgoing.message["type"] == "new-player-card":
            assert outgoing.to == outgoing.message["seat"]
    for viewer in [None, *seats]:
        for seat in visible_cards(hand, viewer):
            assert seat == viewer or hand.shown[hand.seats.index(seat)]


@given(big_blind=st.integers(1, 2**62), seats=st.integers(2, 10), max_bb=st.integers(1, 10_000))
def test_stakes_that_could_overflow_a_stack_are_refused(big_blind: int, seats: int, max_bb: int) -> None:
    stakes = Stakes(big_blind, big_blind, 0, seats, 1, max_bb, 0, 0)
    try:
        stakes.check()
    except InvalidInput:
        assert big_blind * max_bb * seats > 2**63 - 1
    else:
        assert big_blind * max_bb * seats <= 2**63 - 1
