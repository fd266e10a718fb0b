"""What a finished hand reports: deltas, winners, rake, and each player's preflop VPIP and PFR. Pure."""

from __future__ import annotations

from dataclasses import dataclass

from tablium_poker import Hand


@dataclass(frozen=True, slots=True)
class PlayerResult:
    seat: int
    stack_before: int
    stack_after: int
    rake: int
    won: int
    vpip: bool  # put chips in voluntarily preflop (a call, bet or raise; blinds don't count)
    pfr: bool  # bet or raised preflop


def summarize(hand: Hand) -> list[PlayerResult]:
    preflop = True
    vpip: set[int] = set()
    pfr: set[int] = set()
    for event in hand.events:
        if event.kind == "flop":
            preflop = False
        elif preflop and event.kind in ("call", "bet", "raise"):
            vpip.add(event.seat)
            if event.kind != "call":
                pfr.add(event.seat)
    rake = hand.rake_by_seat()
    return [
        PlayerResult(
            seat=seat,
            stack_before=hand.stacks_before[i],
            stack_after=hand.stack[i],
            rake=rake[seat],
            won=hand.won[i],
            vpip=seat in vpip,
            pfr=seat in pfr,
        )
        for i, seat in enumerate(hand.seats)
    ]
