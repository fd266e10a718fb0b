"""A person at a table from a terminal: the table's messages printed as they come, a prompt on each turn.

The same client as the bots (``Bot``: protocol v1 over the WebSocket, stale messages dropped, a refused
action answered with the safe one), with the decision read from the keyboard instead of a policy. The
prompt runs in a thread, so the socket is read (and heartbeats answered) while the player thinks.
"""

from __future__ import annotations

import asyncio
from typing import Any

import click

from tablium_lobby.bots.client import Bot

_SUITS = {"h": "♥", "d": "♦", "c": "♣", "s": "♠"}


def cards_text(cards: list[dict[str, str]]) -> str:
    return " ".join(c["rank"] + _SUITS.get(c["suit"], c["suit"]) for c in cards)


def describe(message: dict[str, Any], me: str) -> str | None:
    """One line for a table message worth showing to a player (None: nothing to show)."""
    kind = message.get("type")
    who = "you" if message.get("userId") == me else f"seat {message.get('seat')}"
    if kind == "hand-start":
        return f"--- new hand: button seat {message.get('button')} ---"
    if kind == "new-player-card":
        return f"your cards: {cards_text(message['cards'])}"
    if kind == "new-table-card":
        return f"{message['street']}: {cards_text(message['cards'])}"
    if kind == "action-broadcast":
        amount = message.get("amount", "0")
        return f"{who}: {message['action']}" + (f" {amount}" if amount not in ("0", None) else "")
    if kind == "showdown":
        return f"{who} shows {cards_text(message['cards'])}" if "cards" in message else f"{who} mucks"
    if kind == "round-result":
        winners = ", ".join("you" if w == me else str(w)[:8] for w in message.get("winners", []))
        return f"result: won by {winners}; stacks {message.get('stacks', {}).get(me, '?')} for you"
    if kind == "error":
        return f"refused: {message.get('error')}"
    return None


def parse_decision(line: str, legal: dict[str, Any]) -> tuple[str, int | None] | str:
    """``f``/``c``/``k``/``r N``/``a`` into an action, or a reason the line is not one."""
    words = line.strip().lower().split()
    if not words:
        return "type f (fold), k (check), c (call), r N (raise to N) or a (all in)"
    verb = words[0]
    if verb in ("f", "fold"):
        return ("fold", None)
    if verb in ("k", "check"):
        return ("check", None) if legal["check"] else "you can't check: call or fold"
    if verb in ("c", "call"):
        return ("call", None) if not legal["check"] else ("check", None)
    if verb in ("a", "all", "allin", "all_in"):
        return ("all_in", None)
    if verb in ("r", "b", "raise", "bet"):
        if len(words) != 2 or not words[1].isdigit():
            return f"raise to how much? from {legal['minRaiseTo']} to {legal['maxRaiseTo']}"
        amount = int(words[1])
        if not int(legal["minRaiseTo"]) <= amount <= int(legal["maxRaiseTo"]):
            return f"raise to between {legal['minRaiseTo']} and {legal['maxRaiseTo']}"
        return ("raise", amount)
    return f"unknown: {verb!r}"


class HumanPlayer(Bot):
    """A seat played from the keyboard."""

    def __init__(self, ws_url: str, token: str, player_id: str) -> None:
        super().__init__(ws_url, token, player_id, policy=lambda legal, cards, rng: ("fold", None))

    async def on_message(self, message: dict[str, Any]) -> None:
        line = describe(message, self.player_id)
        if line is not None and (not isinstance(message.get("seq"), int) or message["seq"] >= self.seq):
            click.echo(line)
        await super().on_message(message)

    async def _act(self, turn: dict[str, Any]) -> None:
        legal = turn["legal"]
        options = "fold" + (", check" if legal["check"] else f", call {legal['call']}")
        if int(legal["maxRaiseTo"]) > 0:
            options += f", raise to {legal['minRaiseTo']}..{legal['maxRaiseTo']}"
        while True:
            line = await asyncio.to_thread(input, f"your turn ({options}) > ")
            decision = parse_decision(line, legal)
            if isinstance(decision, tuple):
                break
            click.echo(decision)
        action, amount = decision
        message: dict[str, Any] = {"type": "action", "action": action, "seq": self.seq}
        if amount is not None:
            message["amount"] = str(amount)
        await self.send(message)
