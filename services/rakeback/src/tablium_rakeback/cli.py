"""``tablium-rakeback``: serve, migrate, openapi, revision, and ``pay-period`` (one period by hand)."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime

import click

from tablium_kit import db
from tablium_kit.cli import service_cli
from tablium_rakeback.app import MIGRATIONS
from tablium_rakeback.domain.periods import last_ended, period_of
from tablium_rakeback.services.scheduler import run_period
from tablium_rakeback.settings import load_settings, period_length

main = service_cli(
    "rakeback", settings=load_settings, app_factory="tablium_rakeback.app:create_app", migrations_dir=MIGRATIONS
)


@main.command("pay-period", help="Pay one period now (default: the last ended one). Paying it again does nothing.")
@click.option("--day", type=click.DateTime(formats=["%Y-%m-%d"]), default=None, help="Any day of the period (UTC).")
def pay_period(day: datetime | None) -> None:
    settings = load_settings()
    now = datetime.now(UTC)
    if day is None:
        period = last_ended(now, period_length(settings))
    else:
        period = period_of(
            datetime.combine(date(day.year, day.month, day.day), datetime.min.time(), UTC), period_length(settings)
        )
    if period.end > now:
        raise click.ClickException(f"the period {period.start:%Y-%m-%d}..{period.end:%Y-%m-%d} has not ended")

    async def run() -> None:
        engine = db.create_engine(settings.database_url, pool_size=1)
        try:
            result = await run_period(db.session_factory(engine), settings, period)
        finally:
            await engine.dispose()
        what = "paid now" if result.created else "already paid"
        click.echo(f"period {period.start:%Y-%m-%d}..{period.end:%Y-%m-%d}: {what}, {result.payouts} payouts")

    asyncio.run(run())
