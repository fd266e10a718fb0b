"""The rakeback service: rake accruals under club deals and tiers, periodic payouts, statements."""

from __future__ import annotations

from pathlib import Path

from litestar import Litestar

from tablium_kit import db
from tablium_kit.app import ServiceDefinition, create_service_app
from tablium_kit.auth import KeySource
from tablium_kit.collector import tune_gc
from tablium_rakeback.api.statements import StatementController
from tablium_rakeback.db.models import MESSAGING
from tablium_rakeback.events.handlers import event_handlers
from tablium_rakeback.services.scheduler import payout_scheduler
from tablium_rakeback.settings import RakebackSettings, load_settings, period_length

MIGRATIONS = Path(__file__).parent / "db" / "migrations"


def create_app(settings: RakebackSettings | None = None, *, key_source: KeySource | None = None) -> Litestar:
    settings = settings or load_settings()

    async def start_scheduler(app: Litestar) -> None:
        app.state.scheduler = None
        if settings.payout_scheduler:
            app.state.scheduler = payout_scheduler(db.session_factory(app.state.db_engine_instance), settings)
            app.state.scheduler.start()

    async def collect_less(_: Litestar) -> None:
        # Last of the start-up hooks, before the kit starts the consumer: what start-up made is frozen.
        tune_gc(settings.gc_young_threshold)

    async def stop_scheduler(app: Litestar) -> None:
        if app.state.scheduler is not None:
            await app.state.scheduler.stop()

    return create_service_app(
        ServiceDefinition(
            settings=settings,
            title="Tablium rakeback service",
            route_handlers=[StatementController],
            migrations_dir=MIGRATIONS,
            messaging=MESSAGING,
            key_source=key_source,
            event_handlers=event_handlers(period_length(settings), settings.tiers) if settings.consume_events else {},
            on_startup=[start_scheduler, collect_less],
            on_shutdown=[stop_scheduler],
        )
    )
