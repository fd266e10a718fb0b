"""Prometheus metrics of the outbox relay and the consumers (default registry, label ``service``)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

OUTBOX_BACKLOG = Gauge("tablium_outbox_backlog", "Outbox events not yet published", ["service"])
OUTBOX_PUBLISHED = Counter("tablium_outbox_published_total", "Outbox events published", ["service"])
OUTBOX_PUBLISH_FAILURES = Counter(
    "tablium_outbox_publish_failures_total", "Outbox events whose publish failed (retried)", ["service"]
)
EVENTS_CONSUMED = Counter(
    "tablium_events_consumed_total",
    "Events taken off the queue, by outcome (handled, duplicate, ignored)",
    ["service", "type", "outcome"],
)
HANDLER_FAILURES = Counter(
    "tablium_event_handler_failures_total", "Event handler exceptions (each one is retried)", ["service", "type"]
)
DEAD_LETTERED = Counter(
    "tablium_events_dead_lettered_total", "Messages moved to the dead-letter queue", ["service", "reason"]
)
CONSUMER_LAG = Histogram(
    "tablium_event_consumer_lag_seconds",
    "Time from the event's occurrence to its handling",
    ["service"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900),
)
