"""A player's action on the engine: the names a client may send, and how each is applied."""

from __future__ import annotations

from typing import Any

from tablium_poker import Hand

ACTION_NAMES = frozenset({"fold", "check", "call", "bet", "raise", "all_in"})


class ActionRefused(Exception):
    """An action the table does not accept: the client gets an ``error``, nothing changes."""


def apply_action(hand: Hand, seat: int, action: str, amount: int | None) -> list[Any]:
    """Apply ``action`` by ``seat`` to ``hand`` (the engine refuses before changing anything)."""
    if action in ("bet", "raise"):
        if amount is None:
            raise ActionRefused(f"{action} needs an amount (the total to bet or raise to)")
        return hand.bet_or_raise_to(seat, amount)
    if amount is not None:
        raise ActionRefused(f"{action} takes no amount")
    if action == "fold":
        return hand.fold(seat)
    if action == "check":
        return hand.check(seat)
    if action == "call":
        return hand.call(seat)
    return hand.all_in(seat)


def replay_action(hand: Hand, seat: int, action: str, amount: int, automatic: str | None) -> None:
    """Apply a recorded ``hand_actions`` row again (rebuilding a hand from its log): the server's default
    action for an automatic one, else the player's action as it was accepted (amounts only on bets)."""
    if automatic is not None:
        hand.act_default(seat)
    else:
        apply_action(hand, seat, action, amount if action in ("bet", "raise") else None)
