"""Rakeback service settings (environment prefix ``TABLIUM_RAKEBACK_``)."""

from __future__ import annotations

from datetime import timedelta

import msgspec

from tablium_kit.settings import ServiceSettings
from tablium_rakeback.domain.tiers import DEFAULT_TIERS, Tier, check_tiers


class RakebackSettings(ServiceSettings, kw_only=True):
    port: int = 8003
    # Payout periods, in seconds, counted from Monday 1970-01-05 00:00 UTC (a week: weeks from Monday).
    payout_period_s: int = 7 * 24 * 3600
    # The scheduler pays a period this long after it ended (hands still in flight get in), looking this often.
    payout_grace_s: int = 3600
    payout_check_interval_s: float = 60.0
    payout_scheduler: bool = True
    # Tiers of players outside clubs, per asset, by their rake over the last ``tier_window_days``.
    tiers: dict[str, list[Tier]] = msgspec.field(default_factory=lambda: dict(DEFAULT_TIERS))
    tier_window_days: int = 30
    # Tests run the consumer on their own queues; the app then starts none.
    consume_events: bool = True
    # Hands are accrued set-based per batch: larger batches, one more in flight, measured faster than the
    # kit's 100 x 2 (bench/rakeback_bench.py, ADR 0011 "Throughput"). TABLIUM_RAKEBACK_WORKERS runs a
    # consumer in each worker process.
    consumer_batch_size: int = 250
    consumer_batches_in_flight: int = 3
    # The cyclic garbage collector (``tablium_kit.collector.tune_gc``): a young collection every this many
    # allocations, start-up's objects frozen out of full collections; 0 leaves Python's defaults. With the
    # defaults, collections were ~30% of a consumer process's CPU at 100 tables (ADR 0011, fifth pass).
    gc_young_threshold: int = 50_000

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.payout_period_s < 1:
            raise ValueError("payout_period_s must be at least 1")
        check_tiers(self.tiers)


def load_settings() -> RakebackSettings:
    return RakebackSettings.from_env("rakeback")


def period_length(settings: RakebackSettings) -> timedelta:
    return timedelta(seconds=settings.payout_period_s)
