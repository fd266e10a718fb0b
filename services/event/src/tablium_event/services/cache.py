"""The live engines kept in process: a cache of committed engine states, keyed by the row's version.

The database is the truth (the snapshot and the journal, db/journal.py); an engine here only saves
replaying them. (tournament, version) names exactly one state, which is what makes the version check
sufficient across processes (docs/adr/0006-tournament-engine.md, "Live engines").
"""

from __future__ import annotations

import asyncio
import uuid
from collections import OrderedDict
from dataclasses import dataclass

from tablium_event.domain.engine import Tournament


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
