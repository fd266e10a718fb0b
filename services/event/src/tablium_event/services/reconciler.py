"""The reconciler: finishes the sagas cut short (docs/adr/0006-tournament-engine.md, "Sagas"), each item alone.

One item the wallet keeps refusing (or a bug that raises for one tournament) used to end the whole
pass, every pass, so nothing after it was ever finished again (issue 10, item 4). Now each item runs
on its own (``attempt``): a failure is rolled back, logged with the item and counted in
``tablium_event_reconcile_failures_total{step}``; the item waits ``base_s · 2^(failures - 1)`` (at most
``cap_s``) before it is tried again, and the rest of the pass goes on.
"""

from __future__ import annotations

import functools
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import structlog
from prometheus_client import Counter
from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from tablium_event.db import queries
from tablium_event.db.models import Prize, Purchase, Registration, TournamentRow
from tablium_event.services import cancel, entries, late_entry, prizes, purchases, start
from tablium_event.services.context import Context
from tablium_kit.errors import Conflict

log = structlog.get_logger("tablium.event.reconciler")

# Items of one kind the reconciler looks at per pass.
RECONCILE_BATCH = 500
RECONCILE_FAILURES = Counter(
    "tablium_event_reconcile_failures", "Reconciler items that failed (each is retried with backoff)", ["step"]
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


async def reconcile(ctx: Context, session: AsyncSession, backoff: Backoff) -> None:
    """Finish half-done wallet steps: holds not confirmed, late entries and purchases cut short, prizes
    owed, cancels and starts cut short. Each item on its own (``services.reconciler.attempt``): one that
    fails is logged, counted and retried later with backoff, and the others go on."""
    holding = await session.scalars(
        select(Registration.id)
        .join(TournamentRow, TournamentRow.id == Registration.tournament_id)
        .where(
            Registration.status == "holding",
            TournamentRow.status.in_(("registering", "running", "starting")),
        )
        .limit(RECONCILE_BATCH)
    )
    for reg_id in holding.all():
        await attempt(session, backoff, "hold", reg_id, functools.partial(_hold, ctx, session, reg_id))
    # A late registration or a purchase cut short: only ones left alone for a while, so an answer still
    # on its way is not raced.
    quiet_since = datetime.now(UTC) - timedelta(seconds=ctx.settings.late_entry_grace_s)
    late = await session.scalars(
        select(Registration.id)
        .join(TournamentRow, TournamentRow.id == Registration.tournament_id)
        .where(
            or_(
                and_(
                    Registration.status == "held",
                    Registration.entry_id.is_(None),
                    TournamentRow.status.in_(("running", "finished")),
                ),
                Registration.status.in_(("posting", "voiding", "refunding")),
            ),
            Registration.updated_at < quiet_since,
        )
        .limit(RECONCILE_BATCH)
    )
    for reg_id in late.all():
        await attempt(session, backoff, "late_entry", reg_id, functools.partial(late_entry.drive, ctx, session, reg_id))
    cut_short = await session.scalars(
        select(Purchase.id)
        .where(Purchase.status.in_(queries.PURCHASE_UNDER_WAY), Purchase.updated_at < quiet_since)
        .limit(RECONCILE_BATCH)
    )
    for purchase_id in cut_short.all():
        # Posted and applied, or voided/refunded if the engine refuses now.
        await attempt(
            session,
            backoff,
            "purchase",
            purchase_id,
            functools.partial(purchases.drive, ctx, session, purchase_id),
        )
    if await prizes.release_reviewed(ctx, session):
        await session.commit()
    owed = await session.scalars(select(Prize.tournament_id).where(Prize.status.in_(prizes.OWED)).distinct())
    for tournament_id in owed.all():
        await attempt(
            session,
            backoff,
            "prizes",
            tournament_id,
            functools.partial(prizes.pay, ctx, session, tournament_id),
        )
    cancelling = await session.scalars(select(TournamentRow.id).where(TournamentRow.status == "cancelling"))
    for tournament_id in cancelling.all():
        await attempt(
            session,
            backoff,
            "cancel",
            tournament_id,
            functools.partial(_cancel, ctx, session, tournament_id),
        )
    # The invariant, for every running tournament (a mismatch is logged and counted, never fixed here).
    running = await session.scalars(select(TournamentRow.id).where(TournamentRow.status == "running"))
    for tournament_id in running.all():
        await attempt(
            session, backoff, "pool", tournament_id, functools.partial(prizes.check_pool, ctx, session, tournament_id)
        )
    # Starts cut short after ``starting`` was committed: post what is left and build the engine.
    starting = await session.scalars(
        select(TournamentRow.id).where(TournamentRow.status == "starting", TournamentRow.updated_at < quiet_since)
    )
    for tournament_id in starting.all():
        await attempt(
            session,
            backoff,
            "start",
            tournament_id,
            functools.partial(_start, ctx, session, tournament_id),
        )


async def _hold(ctx: Context, session: AsyncSession, reg_id: uuid.UUID) -> None:
    reg = await session.get(Registration, reg_id, populate_existing=True)
    assert reg is not None
    row = await session.get(TournamentRow, reg.tournament_id)
    assert row is not None
    if reg.status == "holding":
        await entries.take_hold(ctx, session, row, reg)


async def _cancel(ctx: Context, session: AsyncSession, tournament_id: uuid.UUID) -> None:
    await cancel.finish(ctx, session, await queries.get(session, tournament_id))


async def _start(ctx: Context, session: AsyncSession, tournament_id: uuid.UUID) -> None:
    try:
        await start.start(ctx, session, tournament_id)
    except Conflict as exc:  # e.g. cancelled meanwhile: nothing to retry, not a failure
        log.warning("a start cut short cannot be finished yet", tournament=str(tournament_id), error=str(exc))
        await session.rollback()
