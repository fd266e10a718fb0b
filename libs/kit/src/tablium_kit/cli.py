"""The command line every service shares: ``tablium-<name> serve | migrate | openapi``."""

from __future__ import annotations

import asyncio
import importlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from tablium_kit import db, migrations
from tablium_kit.collector import freeze_heap
from tablium_kit.messaging.topology import declare_topology
from tablium_kit.settings import ServiceSettings

# ``serve`` hands granian's workers (separate processes) the service's app factory through the environment.
_SERVED_FACTORY = "TABLIUM_SERVED_APP_FACTORY"


def served_app() -> Any:
    """Granian's app factory under ``serve`` (one call per worker): the service's app, with what start-up built
    taken out of the garbage collector's sight.

    A service's heap after start-up is mostly modules, classes and the app (Litestar, SQLAlchemy, cryptography,
    ...), alive as long as the process; a full collection walked all of it (up to 107 ms on the loaded benchmark
    machine), now and then, which made the p99 of the runs it fell in (ADR 0004, "The tail of /players/me").
    ``gc.freeze`` moves them to the permanent generation (as the gateway does, and as CPython advises for
    pre-forked servers): once after the factory, and once more at the end of the lifespan's start-up (pools,
    clients, the relay). Only ``serve`` does this; tests build many apps in one process and keep the collector.
    """
    module_name, _, attribute = os.environ[_SERVED_FACTORY].partition(":")
    app = getattr(importlib.import_module(module_name), attribute)()
    app.on_startup.append(_freeze_heap)  # Litestar runs on_startup hooks after the lifespan context managers
    _freeze_heap()
    return app


def _freeze_heap(_app: Any = None) -> None:
    freeze_heap()


def service_cli(
    name: str,
    *,
    settings: Callable[[], ServiceSettings],
    app_factory: str,
    migrations_dir: Path,
    websockets: bool = False,
) -> click.Group:
    """Build the ``tablium-<name>`` command group.

    ``app_factory`` is the import path of the service's ``create_app`` (granian
    imports it in each worker process). ``websockets``: serve WebSocket upgrades,
    for services with WebSocket routes only (the others refuse an upgrade at the
    server; an A/B on this machine was within its noise, ADR 0001).
    """

    @click.group(help=f"Tablium {name} service.")
    def group() -> None:
        pass

    @group.command(help="Serve the API with granian (uvloop).")
    @click.option("--host", default=None, help="Bind address (default: settings).")
    @click.option("--port", type=int, default=None, help="Port (default: settings).")
    @click.option("--workers", type=int, default=None, help="Worker processes (default: settings).")
    def serve(host: str | None, port: int | None, workers: int | None) -> None:
        from granian.constants import Interfaces, Loops
        from granian.server import Server

        current = settings()
        os.environ[_SERVED_FACTORY] = app_factory
        Server(
            "tablium_kit.cli:served_app",
            address=host or current.host,
            port=port or current.port,
            interface=Interfaces.ASGI,
            workers=workers or current.workers,
            loop=Loops.uvloop,
            factory=True,
            websockets=websockets,
            log_access=False,
        ).serve()

    @group.command(help="Create the database if missing, apply all migrations, declare the event queues.")
    def migrate() -> None:
        current = settings()
        created = asyncio.run(db.ensure_database(current.database_url))
        migrations.upgrade(current.database_url, migrations_dir)
        click.echo(f"{name}: database {'created and ' if created else ''}migrated to head")
        # Every consumer's queue, whoever deploys first: an event is never published into the void. The
        # deploy job's broker credentials (TABLIUM_<NAME>_AMQP_URL) may declare every service's queues.
        queues = asyncio.run(declare_topology(current.amqp_url, current.events_exchange))
        click.echo(f"{name}: event queues declared for {', '.join(sorted(queues))}")

    @group.command(help="Autogenerate a migration from the models (developers).")
    @click.argument("message")
    def revision(message: str) -> None:
        current = settings()
        asyncio.run(db.ensure_database(current.database_url))
        migrations.upgrade(current.database_url, migrations_dir)
        migrations.revision(current.database_url, migrations_dir, message)

    @group.command(help="Print the OpenAPI document as JSON.")
    def openapi() -> None:
        module_name, _, attribute = app_factory.partition(":")
        module = __import__(module_name, fromlist=[attribute])
        app = getattr(module, attribute)()
        click.echo(json.dumps(app.openapi_schema.to_schema(), indent=2))

    return group
