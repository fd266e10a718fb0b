"""The event types the event service publishes are the kit's catalog's (ARCHITECTURE.md §4)."""

from __future__ import annotations

import itertools
import uuid
from typing import Any

import msgspec
from tablium_event import events
from tablium_event.amounts import to_wire
from tablium_event.domain.config import TournamentConfig
from tablium_event.domain.engine import Tournament
from tablium_event.domain.instructions import AwardPrize, EliminationUndone

from tablium_kit.messaging import CATALOG
from tablium_kit.messaging.catalog import publisher
from tablium_kit.messaging.envelope import MAX_EVENT_BYTES


def test_every_type_the_event_service_publishes_is_in_the_catalog() -> None:
    published = {
        *events._FACTS.values(),
        events.TOURNAMENT_CREATED,
        events.REGISTRATION_OPENED,
        events.TOURNAMENT_CANCELLED,
        events.TABLE_INSTRUCTIONS,
        events.ENTRY_FEE_PAID,
    }
    assert published <= set(CATALOG)
    assert {publisher(t) for t in published} == {"event"}
    assert events._FACTS[EliminationUndone] == "event.elimination_undone"
    assert events._FACTS[AwardPrize] == "event.prize_awarded"


class _Recorder:
    """Stands in for a session: keeps the outbox rows ``publish_instructions`` writes."""

    def __init__(self) -> None:
        self.info: dict[str, object] = {}
        self.envelopes: list[dict[str, Any]] = []

    async def execute(self, statement: Any, rows: list[dict[str, Any]]) -> None:
        # The kit's outbox binds each envelope as the JSON text it encoded once (Postgres casts it to jsonb).
        self.envelopes.extend(msgspec.json.decode(row["envelope_text"]) for row in rows)


async def test_a_10k_entrant_start_publishes_its_table_instructions_in_parts_under_the_event_cap() -> None:
    tournament = Tournament(TournamentConfig(seats_per_table=9, seed=1))
    for i in range(10_000):
        tournament.register(f"p{i}")
    instructions = tournament.start()
    session = _Recorder()
    await events.publish_instructions(session, uuid.uuid4(), 2, instructions, asset="USDT")  # type: ignore[arg-type]

    parts = [e for e in session.envelopes if e["type"] == events.TABLE_INSTRUCTIONS]
    sizes = [len(msgspec.json.encode(e)) for e in parts]
    assert len(parts) > 1
    assert max(sizes) <= MAX_EVENT_BYTES
    assert [p["data"]["part"] for p in parts] == list(range(1, len(parts) + 1))
    assert {p["data"]["parts"] for p in parts} == {len(parts)}
    assert {p["data"]["seq"] for p in parts} == {2}
    # Together, the parts are the whole set in the engine's order (a lobby applies them by part), cut
    # only where the table changes: a run of one table's instructions is never split.
    together = [i for p in parts for i in p["data"]["instructions"]]
    assert together == to_wire([i.to_dict() for i in instructions if i.kind in events._FOR_TABLES])
    for earlier, later in itertools.pairwise(parts):
        assert earlier["data"]["instructions"][-1]["table"] != later["data"]["instructions"][0]["table"]
