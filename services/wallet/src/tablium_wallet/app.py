"""The wallet service: the double-entry ledger (accounts, transfers, holds, limits, audit)."""

from __future__ import annotations

from pathlib import Path

from litestar import Litestar
from litestar.di import Provide

from tablium_kit import db
from tablium_kit.app import ServiceDefinition, create_service_app
from tablium_kit.auth import KeySource
from tablium_wallet.api.admin import AdminWalletController
from tablium_wallet.api.internal import InternalController
from tablium_wallet.api.player import WalletController
from tablium_wallet.api.withdrawals import WithdrawalHoldController
from tablium_wallet.db.models import MESSAGING
from tablium_wallet.events.handlers import HANDLERS
from tablium_wallet.services.expiry import expiry_job
from tablium_wallet.services.ledger import Ledger
from tablium_wallet.services.runtime import provide_ledger
from tablium_wallet.settings import WalletSettings, load_settings

MIGRATIONS = Path(__file__).parent / "db" / "migrations"


def _wake_relay(app: Litestar) -> None:
    relay = getattr(app.state, "relay", None)
    if relay is not None:
        relay.wake()


def create_app(settings: WalletSettings | None = None, *, key_source: KeySource | None = None) -> Litestar:
    settings = settings or load_settings()

    async def start_ledger(app: Litestar) -> None:
        sessions = db.session_factory(app.state.db_engine_instance)
        app.state.ledger = Ledger(
            sessions,
            max_batch=settings.batch_max_size,
            concurrency=settings.batch_concurrency,
            on_commit=lambda: _wake_relay(app),
        )
        app.state.expiry = expiry_job(
            sessions, interval_s=settings.expiry_interval_s, batch_size=settings.expiry_batch_size
        )
        await app.state.ledger.start()
        app.state.expiry.start()

    async def stop_ledger(app: Litestar) -> None:
        await app.state.expiry.stop()
        await app.state.ledger.stop()

    return create_service_app(
        ServiceDefinition(
            settings=settings,
            title="Tablium wallet service",
            route_handlers=[InternalController, WithdrawalHoldController, WalletController, AdminWalletController],
            migrations_dir=MIGRATIONS,
            messaging=MESSAGING,
            key_source=key_source,
            event_handlers=HANDLERS if settings.consume_events else {},
            on_startup=[start_ledger],
            on_shutdown=[stop_ledger],
            dependencies={"ledger": Provide(provide_ledger, sync_to_thread=False)},
        )
    )
