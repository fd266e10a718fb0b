"""The payout scheduler: pays the last ended period once it is ``payout_grace_s`` old.

Any number of instances may run it: :func:`payouts.pay_period` claims a period in the transaction that
pays it, so the second claimer finds it paid. The CLI's ``pay-period`` runs the same function.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tablium_kit.periodic import Periodic
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


def payout_scheduler(sessions: async_sessionmaker[AsyncSession], settings: RakebackSettings) -> Periodic:
    async def run_pass() -> None:
        period = due_period(settings, datetime.now(UTC))
        if period is not None:
            await run_period(sessions, settings, period)

    return Periodic("rakeback-payouts", run_pass, interval_s=settings.payout_check_interval_s)
