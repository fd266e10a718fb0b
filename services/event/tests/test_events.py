"""The event types the event service publishes are the kit's catalog's (ARCHITECTURE.md §4)."""

from __future__ import annotations

from tablium_event import events
from tablium_event.domain.instructions import AwardPrize, EliminationUndone

from tablium_kit.messaging import CATALOG
from tablium_kit.messaging.catalog import publisher


def test_every_type_the_event_service_publishes_is_in_the_catalog() -> None:
    published = {
        *events._FACTS.values(),
        events.TOURNAMENT_CREATED,
        events.REGISTRATION_OPENED,
        events.TOURNAMENT_CANCELLED,
        events.TABLE_INSTRUCTIONS,
    }
    assert published <= set(CATALOG)
    assert {publisher(t) for t in published} == {"event"}
    assert events._FACTS[EliminationUndone] == "event.elimination_undone"
    assert events._FACTS[AwardPrize] == "event.prize_awarded"
