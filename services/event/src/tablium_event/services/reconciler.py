"""The reconciler's bookkeeping: each item fails alone, is counted, and is retried with backoff.

One item the wallet keeps refusing (or a bug that raises for one tournament) used to end the whole
pass, every pass, so nothing after it was ever finished again (issue 10, item 4). Now each item runs
on its own (``attempt``): a failure is rolled back, logged with the item and counted in
``tablium_event_reconcile_failures_total{step}``; the item waits ``base_s · 2^(failures - 1)`` (at most
``cap_s``) before it is tried again, and the rest of the pass goes on.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import structlog
from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncSession

log = structlog.get_logger("tablium.event.reconciler")

RECONCILE_FAILURES = Counter(
    "tablium_event_reconcile_failures", "Reconciler items that failed (each is retried with backoff)", ["step"]
)
POOL_MISMATCHES = Counter(
    "tablium_event_pool_mismatches",
    "Tournaments whose prize pool in the wallet differs from what the engine's facts say it holds",
)


class Backoff:
    """When each failed item may be tried again (in process: a restart tries everything once more)."""

    def __init__(self, base_s: float = 1.0, cap_s: float = 300.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.base_s, self.cap_s, self.clock = base_s, cap_s, clock
        self._failed: dict[str, tuple[int, float]] = {}  # item -> (failures in a row, next attempt)

    def due(self, item: str) -> bool:
        failed = self._failed.get(item)
        return failed is None or self.clock() >= failed[1]

    def failed(self, item: str) -> tuple[int, float]:
        """Count a failure; returns (failures in a row, seconds until the next attempt)."""
        failures = self._failed.get(item, (0, 0.0))[0] + 1
        delay = min(self.cap_s, self.base_s * 2 ** (failures - 1))
        self._failed[item] = (failures, self.clock() + delay)
        return failures, delay

    def succeeded(self, item: str) -> None:
        self._failed.pop(item, None)

    def failures(self, item: str) -> int:
        return self._failed.get(item, (0, 0.0))[0]


async def attempt(
    session: AsyncSession, backoff: Backoff, step: str, key: object, work: Callable[[], Awaitable[object]]
) -> bool:
    """Run one reconciler item unless it is backing off; True if it ran to the end. Its failure is
    rolled back, logged and counted, never raised: the other items of the pass go on."""
    item = f"{step}:{key}"
    if not backoff.due(item):
        return False
    try:
        await work()
        await session.commit()
    except Exception:
        await session.rollback()
        failures, delay = backoff.failed(item)
        RECONCILE_FAILURES.labels(step=step).inc()
        log.exception("reconciler item failed", step=step, item=str(key), failures=failures, retry_in_s=delay)
        return False
    backoff.succeeded(item)
    return True
