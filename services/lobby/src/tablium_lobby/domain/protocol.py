"""The table protocol (version 1): what the server says about a hand, to whom. Pure: no I/O.

Every message is a JSON object with a ``type``; state messages carry the table's ``seq`` (one commit,
one ``seq``: the messages that commit produced share it; clients drop anything older than what they
have). A message is addressed to everyone at the table (``to=None``) or to one seat's owner only
(``to=<seat>``): hole cards are only ever in messages addressed to their owner, or in a ``showdown``
once the engine tabled them. docs/events/lobby-table-protocol.yaml documents each type.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tablium_poker import Event, Hand
from tablium_poker.cards import format_card, format_cards

PROTOCOL_VERSION = 1

_FORCED = frozenset({"ante", "small_blind", "big_blind", "straddle", "big_blind_ante", "dead_blind", "live_blind"})
_ACTIONS = frozenset({"fold", "check", "call", "bet", "raise"})
_STREETS = frozenset({"flop", "turn", "river"})
_RETURNS = frozenset({"uncalled_bet_returned", "uncalled_ante_returned"})


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A message and its audience: everyone (``to is None``) or the owner of seat ``to`` only."""

    message: dict[str, Any]
    to: int | None = None


def cards_out(cards: tuple[int, ...] | list[int]) -> list[dict[str, str]]:
    return [{"rank": format_card(c)[0], "suit": format_card(c)[1]} for c in cards]


def event_messages(events: list[Event], players: dict[int, str], seq: int) -> list[Outgoing]:
    """The messages for engine events just produced (``players``: seat -> player id)."""
    out: list[Outgoing] = []
    for e in events:
        kind = e.kind
        if kind in _FORCED or kind in _ACTIONS or kind in _RETURNS:
            action = "return" if kind in _RETURNS else kind
            out.append(
                Outgoing(
                    {
                        "type": "action-broadcast",
                        "seq": seq,
                        "userId": players.get(e.seat),
                        "seat": e.seat,
                        "action": action,
                        "amount": str(e.amount),
                    }
                )
            )
        elif kind == "hole_cards":
            out.append(
                Outgoing(
                    {"type": "new-player-card", "seq": seq, "seat": e.seat, "cards": cards_out(e.cards)},
                    to=e.seat,
                )
            )
        elif kind in _STREETS:
            out.append(Outgoing({"type": "new-table-card", "seq": seq, "street": kind, "cards": cards_out(e.cards)}))
        elif kind == "show":
            out.append(
                Outgoing(
                    {
                        "type": "showdown",
                        "seq": seq,
                        "seat": e.seat,
                        "userId": players.get(e.seat),
                        "cards": cards_out(e.cards),
                    }
                )
            )
        elif kind == "muck":
            out.append(
                Outgoing(
                    {"type": "showdown", "seq": seq, "seat": e.seat, "userId": players.get(e.seat), "mucked": True}
                )
            )
        elif kind == "pot":
            out.append(Outgoing({"type": "pot", "seq": seq, "pot": e.seat, "amount": str(e.amount)}))
    return out


def turn_messages(hand: Hand, players: dict[int, str], seq: int, deadline_ms: int, time_bank_ms: int) -> list[Outgoing]:
    """Whose turn it is and the clock for everyone; the legal actions with exact amounts for the actor."""
    seat = hand.actor_seat
    if seat is None or hand.phase != "betting":
        return []
    legal = hand.legal_actions()
    public = {
        "type": "turn",
        "seq": seq,
        "seat": seat,
        "userId": players.get(seat),
        "deadline": deadline_ms,
        "timeBankMs": time_bank_ms,
        "pot": str(hand.total_pot()),
        "pots": pots_out(hand),
    }
    mine = {
        **public,
        "legal": {
            "fold": legal.fold,
            "check": legal.check,
            "call": str(legal.call),
            "minRaiseTo": str(legal.min_to),
            "maxRaiseTo": str(legal.max_to),
        },
    }
    return [Outgoing(public), Outgoing(mine, to=seat)]


def pots_out(hand: Hand) -> list[dict[str, Any]]:
    """The main pot and the side pots as they stand (before rake), each with the seats that can win it."""
    return [{"amount": str(p.amount), "seats": list(p.seats)} for p in hand.pots()]


def hand_view(hand: Hand, viewer_seat: int | None, players: dict[int, str]) -> dict[str, Any]:
    """The hand as ``viewer_seat`` may see it (None: a spectator), chips as strings."""
    view = hand.view(viewer_seat)
    for player in view["players"]:
        player["userId"] = players.get(player["seat"])
        player["stack"] = str(player["stack"])
        player["bet"] = str(player["bet"])
    view["pot"] = str(view["pot"])
    view["pots"] = pots_out(hand)
    if view["legal_actions"] is not None:
        legal = view["legal_actions"]
        view["legal_actions"] = {
            "fold": legal["fold"],
            "check": legal["check"],
            "call": str(legal["call"]),
            "minRaiseTo": str(legal["min_to"]),
            "maxRaiseTo": str(legal["max_to"]),
        }
    for event in view["events"]:
        event["amount"] = str(event["amount"])
    return view


def visible_cards(hand: Hand, viewer_seat: int | None) -> dict[int, str]:
    """Hole cards ``viewer_seat`` may see: its own, and those tabled at showdown."""
    return {
        seat: format_cards(hand.hole[i]) for i, seat in enumerate(hand.seats) if seat == viewer_seat or hand.shown[i]
    }
