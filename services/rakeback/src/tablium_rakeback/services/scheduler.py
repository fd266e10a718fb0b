"""The payout scheduler: pays the last ended period once it is ``payout_grace_s`` old.

Any number of instances may run it: :func:`payouts.pay_period` claims a period in the transaction that
pays it, so the second claimer finds it paid. The CLI's ``pay-period`` runs the same function.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tablium_rakeback.domain.periods import Period, last_ended
from tablium_rakeback.services.payouts import RunResult, pay_period
from tablium_rakeback.settings import RakebackSettings, period_length

log = structlog.get_logger("tablium.rakeback.scheduler")


async def run_period(
    sessions: async_sessionmaker[AsyncSession], settings: RakebackSettings, period: Period
) -> RunResult:
    async with sessions() as session, session.begin():
        result = await pay_period(
            session, period, tiers=settings.tiers, tier_window=timedelta(days=settings.tier_window_days)
        )
    if result.created:
        log.info("period paid", period_start=period.start.isoformat(), payouts=result.payouts)
    return result


def due_period(settings: RakebackSettings, now: datetime) -> Period | None:
    period = last_ended(now, period_length(settings))
    return period if now - period.end >= timedelta(seconds=settings.payout_grace_s) else None


class PayoutScheduler:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], settings: RakebackSettings) -> None:
        self._sessions = sessions
        self._settings = settings
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="rakeback-payouts")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                period = due_period(self._settings, datetime.now(UTC))
                if period is not None:
                    await run_period(self._sessions, self._settings, period)
            except Exception:
                log.exception("payout run failed; trying again")
            await asyncio.sleep(self._settings.payout_check_interval_s)
