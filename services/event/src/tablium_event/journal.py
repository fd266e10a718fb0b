"""The engine's facts as journal rows, and the live engines kept in process.

A running tournament is its last snapshot (``TournamentRow.state`` at ``state_version``) plus the
facts journaled after it (``tournament_facts``), replayed in order. The engine is deterministic, so
``apply`` on a restored engine does exactly what it did live: the live code calls the same function
(or, where it must ask the engine or the wallet between a fact's steps, makes the same engine calls
in the same order), with the same JSON payload, including the ``now_ms`` of the clock tick.

Payloads are JSON objects whose own keys are fixed names: stacks and knockouts are lists of pairs, since
JSONB reorders object keys (and makes them strings) and the engine may depend on their order.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
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
        case _:
            raise ValueError(f"unknown fact {kind}")
    return out


@dataclass
class Live:
    version: int
    engine: Tournament


class LiveEngines:
    """The live engine of each tournament this process touched, keyed by the row's version.

    An engine is *checked out* by one coroutine at a time (a fact, or bringing it up to date for a read)
    and *checked in* with the version it now has — by a fact only after its transaction committed, so
    the cache holds committed states only and (tournament, version) names one state. Anything else
    (a refusal, an error, a rollback) drops it; the next use loads snapshot + journal. Other processes
    write too: the row's version under its lock says whether the cached engine is still current.
    """

    def __init__(self, max_engines: int = 64) -> None:
        # Least recently checked in first: beyond ``max_engines`` the oldest is dropped (it reloads from
        # snapshot + journal when next used). Finished and cancelled tournaments are not kept at all.
        self._live: OrderedDict[uuid.UUID, Live] = OrderedDict()
        self._out: dict[uuid.UUID, asyncio.Event] = {}
        self.max_engines = max(1, max_engines)

    async def checkout(self, tournament_id: uuid.UUID) -> Live | None:
        while (busy := self._out.get(tournament_id)) is not None:
            await busy.wait()
        self._out[tournament_id] = asyncio.Event()
        return self._live.pop(tournament_id, None)

    def checkin(self, tournament_id: uuid.UUID, live: Live | None) -> None:
        """Give it back (``live``) or drop it (None); wakes whoever waits for it."""
        if live is not None and live.engine.status not in ("finished", "cancelled"):
            self._live[tournament_id] = live
            self._live.move_to_end(tournament_id)
            while len(self._live) > self.max_engines:
                self._live.popitem(last=False)
        busy = self._out.pop(tournament_id, None)
        if busy is not None:
            busy.set()

    def clear(self) -> None:
        """Forget every engine (as a restarted process would); nothing may be checked out."""
        assert not self._out, "an engine is checked out"
        self._live.clear()

    def __len__(self) -> int:
        return len(self._live)

    def peek(self, tournament_id: uuid.UUID) -> Live | None:
        """For tests: the cached engine, if any."""
        return self._live.get(tournament_id)
