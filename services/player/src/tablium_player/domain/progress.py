"""What a played hand is worth to a player: XP and the level curve. Pure, integers only.

The rule (docs/adr/0009-player-stats.md) depends on the hand's own facts alone, never on the order
hands arrive in, so the totals are the same whatever the redeliveries and reordering:

- every hand dealt in earns :data:`XP_PER_HAND`;
- a hand won earns one more XP per whole big blind of net profit (stack after minus stack before,
  rake already out), at most :data:`MAX_WIN_XP` a hand, so one huge pot can't buy many levels.

Level *n* needs ``50·n·(n-1)`` XP in total: level 2 at 100, 3 at 300, 4 at 600, 5 at 1,000,
10 at 4,500, 20 at 19,000; each level costs 100 XP more than the one before.

>>> hand_xp(net=250, big_blind=10)
35
>>> hand_xp(net=-40, big_blind=10)
10
>>> [level_for(xp) for xp in (0, 99, 100, 299, 300, 4_500)]
[1, 1, 2, 2, 3, 10]
>>> xp_for_level(3)
300
"""

from __future__ import annotations

from math import isqrt

XP_PER_HAND = 10
MAX_WIN_XP = 100
XP_STEP = 50  # level n needs XP_STEP * n * (n - 1)


def hand_xp(*, net: int, big_blind: int) -> int:
    """XP a player earns for one hand dealt in, from their net result in chips and the big blind."""
    won_big_blinds = net // big_blind if net > 0 and big_blind > 0 else 0
    return XP_PER_HAND + min(won_big_blinds, MAX_WIN_XP)


def xp_for_level(level: int) -> int:
    """Total XP needed to reach ``level`` (level 1 needs none)."""
    if level < 1:
        raise ValueError("levels start at 1")
    return XP_STEP * level * (level - 1)


def level_for(xp: int) -> int:
    """The level a player with ``xp`` in total has: the largest n with ``xp_for_level(n) <= xp``."""
    if xp < 0:
        raise ValueError("XP is never negative")
    # n(n-1) <= q  <=>  (2n-1)^2 <= 4q+1, with q = xp // XP_STEP (n(n-1) is an integer).
    return (isqrt(4 * (xp // XP_STEP) + 1) + 1) // 2
