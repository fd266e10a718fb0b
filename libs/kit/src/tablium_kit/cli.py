"""The command line every service shares: ``tablium-<name> serve | migrate | openapi``."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import click

from tablium_kit import db, migrations
from tablium_kit.messaging.topology import declare_topology
from tablium_kit.settings import ServiceSettings


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
        Server(
            app_factory,
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
