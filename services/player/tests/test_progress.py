"""The XP rule and the level curve (domain/progress.py)."""

from __future__ import annotations

import doctest
import itertools

from hypothesis import given
from hypothesis import strategies as st

from tablium_player.domain import progress
from tablium_player.domain.progress import MAX_WIN_XP, XP_PER_HAND, hand_xp, level_for, xp_for_level


def test_the_examples_in_the_docstring_hold() -> None:
    assert doctest.testmod(progress).failed == 0


@given(st.integers(0, 10**40))
def test_the_level_is_the_highest_one_the_xp_reaches(xp: int) -> None:
    level = level_for(xp)
    assert xp_for_level(level) <= xp < xp_for_level(level + 1)


def test_the_curve() -> None:
    assert [xp_for_level(n) for n in range(1, 6)] == [0, 100, 300, 600, 1_000]
    # Each level costs 100 XP more than the one before.
    steps = [xp_for_level(n + 1) - xp_for_level(n) for n in range(1, 30)]
    assert all(b - a == 100 for a, b in itertools.pairwise(steps))


@given(net=st.integers(-(2**128), 2**128), big_blind=st.integers(1, 2**128))
def test_a_hand_earns_its_base_xp_plus_won_big_blinds_capped(net: int, big_blind: int) -> None:
    xp = hand_xp(net=net, big_blind=big_blind)
    assert XP_PER_HAND <= xp <= XP_PER_HAND + MAX_WIN_XP
    assert xp == XP_PER_HAND + min(MAX_WIN_XP, max(0, net) // big_blind)


def test_examples() -> None:
    assert hand_xp(net=0, big_blind=100) == 10
    assert hand_xp(net=99, big_blind=100) == 10  # less than a big blind
    assert hand_xp(net=1_000, big_blind=100) == 20
    assert hand_xp(net=10**30, big_blind=100) == 110  # capped
