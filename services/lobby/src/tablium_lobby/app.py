"""The lobby service: cash tables, seats, real-time play over WebSocket, hand histories."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from pathlib import Path

from litestar import Litestar
from litestar.di import Provide

from tablium_kit import db
from tablium_kit.app import ServiceDefinition, create_service_app
from tablium_kit.auth import KeySource
from tablium_kit.collector import tune_gc
from tablium_kit.periodic import Periodic
from tablium_lobby.api.club_tables import ClubTableController
from tablium_lobby.api.hands import HandController
from tablium_lobby.api.play import StateController, table_socket
from tablium_lobby.api.private import MemberController, PrivateTableController
from tablium_lobby.api.tables import SeatController, StatsController, TableController
from tablium_lobby.api.waiting import WaitingController, provide_matching
from tablium_lobby.clients.wallet import Wallet
from tablium_lobby.db.models import MESSAGING
from tablium_lobby.events.handlers import HANDLERS
from tablium_lobby.services import stages
from tablium_lobby.services.dealer import Dealer
from tablium_lobby.services.hub import Hub
from tablium_lobby.services.lease import Leases
from tablium_lobby.services.matching import Matching
from tablium_lobby.services.presence import Presence
from tablium_lobby.services.registry import Registry
from tablium_lobby.services.runtime import provide_seating
from tablium_lobby.services.seating import Seating
from tablium_lobby.services.stats import lobby_stats
from tablium_lobby.services.tickets import WsTickets
from tablium_lobby.settings import LobbySettings, load_settings

MIGRATIONS = Path(__file__).parent / "db" / "migrations"


def _reconciler(seating: Seating, dealer: Dealer, interval_s: float) -> Periodic:
    async def run_pass() -> None:
        await seating.reconcile()
        await dealer.reconcile()
        await seating.stand_up_leavers()
        async with seating.sessions() as session:
            await lobby_stats(session)  # keeps the Prometheus gauges current

    return Periodic("lobby-reconciler", run_pass, interval_s=interval_s, first_pass_after_s=interval_s)


def instance_name(settings: LobbySettings) -> str:
    """This process's name in leases and on Redis: the instance's, or with several workers, the worker's
    within it (the siblings share what precedes the last dot: services/forward.py)."""
    if settings.workers > 1:
        family = settings.instance_id or f"{socket.gethostname()}-{os.getppid()}"
        return f"{family}.{os.getpid()}"
    return settings.instance_id or uuid.uuid4().hex


def create_app(settings: LobbySettings | None = None, *, key_source: KeySource | None = None) -> Litestar:
    settings = settings or load_settings()

    async def start(app: Litestar) -> None:
        sessions = db.session_factory(app.state.db_engine_instance)
        wallet = Wallet(settings.wallet_url, app.state.service_tokens)
        instance = instance_name(settings)
        hub = Hub(app.state.redis, settings.redis_key(), instance, settings.reorder_wait_s)
        await hub.start()
        seating = Seating(settings, sessions, wallet)
        leases = presence = None
        if settings.leases:
            leases = Leases(app.state.redis, settings.redis_key("lobby"), instance, settings.lease_ttl_s)
            presence = Presence(app.state.redis, settings.redis_key("lobby"), settings.lease_ttl_s)
        dealer = Dealer(settings, sessions, seating, hub, leases, presence)
        prefix = settings.redis_key()
        matching = Matching(seating, Registry(app.state.redis, prefix), hub, app.state.redis, prefix)

        async def on_seat_change(table_id: uuid.UUID, change: dict[str, object]) -> None:
            await dealer.on_seat_change(table_id, change)
            await matching.on_seat_change(table_id, change)

        seating.set_notify(on_seat_change, freed=matching.seats_freed)
        app.state.seating = seating
        app.state.matching = matching
        app.state.ws_tickets = WsTickets(app.state.redis, settings.redis_key("ws-ticket"), settings.ws_ticket_ttl_s)
        app.state.dealer = dealer
        await dealer.recover()
        await matching.start(settings.matching_interval_s)
        tune_gc(settings.gc_young_threshold)
        app.state.leases = asyncio.create_task(dealer.keep_leases(), name="lobby-leases")
        app.state.stages = asyncio.create_task(stages.run(settings.stage_trace or None), name="lobby-stages")
        app.state.reconciler = None
        if settings.reconcile_interval_s > 0:
            app.state.reconciler = _reconciler(seating, dealer, settings.reconcile_interval_s)
            app.state.reconciler.start()

    async def stop(app: Litestar) -> None:
        for task in (app.state.leases, app.state.stages):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if app.state.reconciler is not None:
            await app.state.reconciler.stop()
        await app.state.matching.stop()
        await app.state.dealer.stop()
        await app.state.dealer.hub.stop()
        await app.state.seating.wallet.aclose()

    return create_service_app(
        ServiceDefinition(
            settings=settings,
            title="Tablium lobby service",
            route_handlers=[
                TableController,
                WaitingController,
                SeatController,
                StatsController,
                StateController,
                HandController,
                PrivateTableController,
                MemberController,
                ClubTableController,
                table_socket,
            ],
            migrations_dir=MIGRATIONS,
            uses_redis=True,
            messaging=MESSAGING,
            event_handlers=HANDLERS if settings.consume_events else {},
            key_source=key_source,
            on_startup=[start],
            on_shutdown=[stop],
            dependencies={
                "seating": Provide(provide_seating, sync_to_thread=False),
                "matching": Provide(provide_matching, sync_to_thread=False),
            },
        )
    )
