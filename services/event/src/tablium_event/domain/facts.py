"""The engine's facts: what the journal holds, and the one way a fact is applied to an engine.

A running tournament is its last snapshot (``TournamentRow.state`` at ``state_version``) plus the
facts journaled after it (``tournament_facts``), replayed in order. The engine is deterministic, so
``apply`` on a restored engine does exactly what it did live: the live code calls the same function
(or, where it must ask the engine or the wallet between a fact's steps, makes the same engine calls
in the same order), with the same JSON payload, including the ``now_ms`` of the clock tick.

Payloads are JSON objects whose own keys are fixed names: stacks and knockouts are lists of pairs, since
JSONB reorders object keys (and makes them strings) and the engine may depend on their order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tablium_event.domain.engine import Tournament
from tablium_event.domain.instructions import Instruction

COMMANDS = ("pause", "resume", "undo", "lock", "tolerance")


def hand_payload(
    now_ms: int, table: int, stacks: Mapping[int, int], knockouts: Mapping[int, Sequence[int]]
) -> dict[str, Any]:
    return {
        "now_ms": now_ms,
        "table": table,
        "stacks": [[entry, stack] for entry, stack in stacks.items()],
        "knockouts": [[busted, list(by)] for busted, by in knockouts.items()],
    }


def apply(engine: Tournament, kind: str, payload: Mapping[str, Any]) -> list[Instruction]:
    """One fact: the clock first (what it did since the last fact goes out with it), then the fact itself.

    Raises the engine's ``TournamentRuleError`` if it refuses; the engine may then be half-changed
    and must be dropped (the service never keeps it).
    """
    out = engine.tick(payload["now_ms"])
    match kind:
        case "tick":
            pass
        case "hand":
            out += engine.hand_finished(
                payload["table"],
                dict(payload["stacks"]),
                knockouts={busted: list(by) for busted, by in payload["knockouts"]},
            )
        case "entry":
            out += engine.register(payload["player"])[1]
        case "rebuy":
            out += engine.buy_rebuy(payload["entry"])
        case "addon":
            out += engine.addon(payload["entry"])
        case "cancel":
            out += engine.cancel()
        case "pause":
            out += engine.pause()
        case "resume":
            out += engine.resume()
        case "undo":
            out += engine.undo(payload["what"], stack=payload.get("stack"), from_entry=payload.get("from_entry"))
        case "lock":
            engine.lock_seat(payload["entry"], payload["locked"])
        case "tolerance":
            out += engine.set_tolerance(payload["tolerance"])
        case "order_tie":
            out += engine.order_tie(payload["entries"])
        case _:
            raise ValueError(f"unknown fact {kind}")
    return out
