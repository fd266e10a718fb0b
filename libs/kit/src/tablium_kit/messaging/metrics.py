"""Prometheus metrics of the outbox relay and the consumers (default registry, label ``service``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from prometheus_client import Counter, Gauge, Histogram

from tablium_kit.messaging.envelope import CloudEvent

OUTBOX_BACKLOG = Gauge("tablium_outbox_backlog", "Outbox events not yet published", ["service"])
OUTBOX_PUBLISHED = Counter("tablium_outbox_published_total", "Outbox events published", ["service"])
OUTBOX_PUBLISH_FAILURES = Counter(
    "tablium_outbox_publish_failures_total",
    "Outbox events whose publish failed, by reason: unconfirmed (broker away) or refused (returned, nacked)",
    ["service", "reason"],
)
OUTBOX_PARKED = Counter(
    "tablium_outbox_parked_total", "Outbox events parked (never to be retried by themselves)", ["service", "reason"]
)
# Alert on this one above zero (ADR 0002): each parked event holds back its subject's later events.
OUTBOX_PARKED_NOW = Gauge("tablium_outbox_parked_events", "Outbox events parked and still unpublished", ["service"])
EVENTS_CONSUMED = Counter(
    "tablium_events_consumed_total",
    "Events taken off the queue, by outcome (handled, duplicate, ignored)",
    ["service", "type", "outcome"],
)
HANDLER_FAILURES = Counter(
    "tablium_event_handler_failures_total", "Event handler exceptions (each one is retried)", ["service", "type"]
)
DEAD_LETTERED = Counter(
    "tablium_events_dead_lettered_total",
    "Messages moved to the dead-letter queue, by reason (failed, malformed, forged)",
    ["service", "reason"],
)
INFRA_RETRIES = Counter(
    "tablium_event_infra_retries_total",
    "Handler runs that failed on infrastructure (database down, deadlock...) and are retried in place",
    ["service"],
)
CONSUMER_RESTARTS = Counter(
    "tablium_consumer_restarts_total",
    "Consumer (re)starts after a failure: a failed start or declaration, a lost broker connection",
    ["service"],
)
CONSUMER_LAG = Histogram(
    "tablium_event_consumer_lag_seconds",
    "Time from the event's occurrence to its handling",
    ["service"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900),
)
BATCH_SIZE = Histogram(
    "tablium_event_batch_size",
    "Deliveries handled together in one transaction (batches of two or more)",
    ["service"],
    buckets=(2, 5, 10, 25, 50, 100, 250, 500),
)
BATCH_FALLBACKS = Counter(
    "tablium_event_batch_fallbacks_total",
    "Batches rolled back by a handler's failure and handled again message by message",
    ["service"],
)


def count_batch(service: str, events: Sequence[CloudEvent], outcomes: Sequence[str]) -> None:
    """A committed batch's events counted per type and outcome, and their lag, the histogram child looked up
    once: a label lookup per message cost more than the rest of the batch's bookkeeping."""
    now = datetime.now(UTC)
    lag = CONSUMER_LAG.labels(service)
    counts: dict[tuple[str, str], int] = {}
    for event, outcome in zip(events, outcomes, strict=True):
        key = (event.type, outcome)
        counts[key] = counts.get(key, 0) + 1
        lag.observe(max(0.0, (now - event.time).total_seconds()))
    for (event_type, outcome), count in counts.items():
        EVENTS_CONSUMED.labels(service, event_type, outcome).inc(count)
