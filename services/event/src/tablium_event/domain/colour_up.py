"""Colour-up and the chip race at a break (TOURNAMENT.md "Levels, clock and breaks" [24, 25B]).

When the smallest chip the levels still need grows after a break (``smallest_chip``: the greatest common
divisor of every blind and ante from a level on), the smaller chips leave play. At each table every
player's odd chips (what is not a multiple of the new chip) are raced: each player is dealt a card per odd
chip and the highest cards win one new chip each, as many as the odd chips are worth rounded half up
[24]; one chip at most per player; a player who would be left with nothing keeps one new chip (nobody is
raced out [25B]). The deal is drawn from the tournament's seeded RNG: highest card first is a draw without
replacement weighted by the number of cards (the best of k cards is first with probability k / Σk), so a
replay makes the same race.

Pure: stacks in, stacks out. The race changes the chips in play by less than one new chip per player.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

from tablium_event.domain.config import Structure


def smallest_chip(structure: Structure, level: int) -> int:
    """The smallest chip needed from level ``level`` (1-based) on: the gcd of its and every later level's
    blinds and antes (the last level repeats, so it counts)."""
    chip = 0
    for played in structure.levels[max(0, min(level, len(structure.levels)) - 1) :]:
        chip = math.gcd(chip, played.small_blind, played.big_blind, played.ante)
    return max(1, chip)


def chip_race(stacks: Sequence[tuple[int, int]], old_chip: int, new_chip: int, rng: random.Random) -> dict[int, int]:
    """The stacks of one table after the race, by entry (every entry given, in seat order)."""
    after = {entry: stack - stack % new_chip for entry, stack in stacks}
    odd = [(entry, stack % new_chip) for entry, stack in stacks if stack % new_chip]
    if not odd:
        return after
    total = sum(value for _, value in odd)
    chips = min(len(odd), (2 * total + new_chip) // (2 * new_chip))  # rounded half up [24]
    cards = {entry: max(1, -(-value // old_chip)) for entry, value in odd}
    order: list[int] = []
    while len(order) < chips:
        pick = rng.randrange(sum(cards.values()))
        for entry, count in cards.items():
            if pick < count:
                order.append(entry)
                del cards[entry]
                break
            pick -= count
    for entry in order:
        after[entry] += new_chip
    for entry, _ in odd:
        if after[entry] == 0:  # nobody is raced out [25B]
            after[entry] = new_chip
    return after
