"""What a bot does on its turn, from the legal actions the server sent: random, tight-aggressive, shove."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

# (action, amount or None) from (legal actions, own hole cards "AhKd" or "", rng)
Policy = Callable[[dict[str, Any], str, random.Random], tuple[str, int | None]]
_RANKS = "23456789TJQKA"


def _raise_to(legal: dict[str, Any], rng: random.Random) -> int | None:
    low, high = int(legal["minRaiseTo"]), int(legal["maxRaiseTo"])
    if high == 0:
        return None
    return rng.randint(low, min(high, low * 3)) if rng.random() < 0.95 else high


def random_policy(legal: dict[str, Any], cards: str, rng: random.Random) -> tuple[str, int | None]:
    """Any legal action, calls and checks most often."""
    roll = rng.random()
    raise_to = _raise_to(legal, rng)
    if roll < 0.15 and raise_to is not None:
        return ("raise", raise_to)
    if roll < 0.25 and legal["fold"] and not legal["check"]:
        return ("fold", None)
    if legal["check"]:
        return ("check", None)
    return ("call", None)


def strength(cards: str) -> float:
    """A rough preflop score in 0..1: pairs, high cards, suited, connected."""
    if len(cards) != 4:
        return 0.0
    a, b = _RANKS.index(cards[0]), _RANKS.index(cards[2])
    high, low = max(a, b), min(a, b)
    score = (high + low) / 24 * 0.6
    if a == b:
        score += 0.35 + low / 12 * 0.1
    if cards[1] == cards[3]:
        score += 0.05
    if high - low == 1:
        score += 0.03
    return min(score, 1.0)


def tight_aggressive(legal: dict[str, Any], cards: str, rng: random.Random) -> tuple[str, int | None]:
    """Raise good hands, call fair ones, check or fold the rest."""
    s = strength(cards)
    raise_to = _raise_to(legal, rng)
    if s > 0.7 and raise_to is not None:
        return ("raise", raise_to)
    if s > 0.45 and int(legal["call"]) > 0:
        return ("call", None)
    if legal["check"]:
        return ("check", None)
    return ("fold", None)


def shove(legal: dict[str, Any], cards: str, rng: random.Random) -> tuple[str, int | None]:
    """All in whenever a raise is open, else call (multi-way all-ins and side pots in tests)."""
    if int(legal["maxRaiseTo"]) > 0:
        return ("all_in", None)
    return ("check", None) if legal["check"] else ("call", None)


POLICIES: dict[str, Policy] = {"random": random_policy, "tag": tight_aggressive, "shove": shove}
