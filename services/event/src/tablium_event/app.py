"""The event service: tournaments (director API, registration, lobby views, the table interface)."""

from __future__ import annotations

from pathlib import Path

from litestar import Litestar
from litestar.datastructures import State
from litestar.di import Provide

from tablium_event.api.internal import TablesController
from tablium_event.api.tournaments import PurchaseController, RegistrationController, TournamentController
from tablium_event.clients.wallet import Wallet
from tablium_event.db.models import MESSAGING
from tablium_event.events.handlers import HANDLERS
from tablium_event.services.tournaments import Tournaments
from tablium_event.settings import EventSettings, load_settings
from tablium_kit import db
from tablium_kit.app import ServiceDefinition, create_service_app
from tablium_kit.auth import KeySource

MIGRATIONS = Path(__file__).parent / "db" / "migrations"


def provide_tournaments(state: State) -> Tournaments:
    tournaments: Tournaments = state.tournaments
    return tournaments


def create_app(settings: EventSettings | None = None, *, key_source: KeySource | None = None) -> Litestar:
    settings = settings or load_settings()

    async def build(app: Litestar) -> None:
        tournaments = Tournaments(settings, Wallet(settings.wallet_url, app.state.service_tokens))
        app.state.tournaments = tournaments
        await tournaments.start_background(db.session_factory(app.state.db_engine_instance))

    async def stop(app: Litestar) -> None:
        tournaments: Tournaments = app.state.tournaments
        await tournaments.stop_background()
        await tournaments.wallet.aclose()

    return create_service_app(
        ServiceDefinition(
            settings=settings,
            title="Tablium event service",
            route_handlers=[TournamentController, RegistrationController, PurchaseController, TablesController],
            migrations_dir=MIGRATIONS,
            messaging=MESSAGING,
            event_handlers=HANDLERS if settings.consume_events else {},
            key_source=key_source,
            on_startup=[build],
            on_shutdown=[stop],
            dependencies={"tournaments": Provide(provide_tournaments, sync_to_thread=False)},
        )
    )
