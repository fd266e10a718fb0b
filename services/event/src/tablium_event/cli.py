"""``tablium-event``: serve, migrate, openapi, revision, snapshot."""

from __future__ import annotations

import asyncio

import click

from tablium_event.app import MIGRATIONS
from tablium_event.settings import EventSettings, load_settings
from tablium_kit import db
from tablium_kit.auth import ServiceTokens
from tablium_kit.cli import service_cli

main = service_cli(
    "event", settings=load_settings, app_factory="tablium_event.app:create_app", migrations_dir=MIGRATIONS
)


async def snapshot_running(settings: EventSettings) -> list[tuple[str, int]]:
    from tablium_event.clients.wallet import Wallet
    from tablium_event.services.tournaments import Tournaments

    engine = db.create_engine(settings.database_url)
    tournaments = Tournaments(settings, Wallet(settings.wallet_url, ServiceTokens.from_settings(settings)))
    try:
        async with db.session_factory(engine)() as session:
            return [(str(tid), version) for tid, version in await tournaments.snapshot_running(session)]
    finally:
        await tournaments.wallet.aclose()
        await engine.dispose()


@main.command(help="Snapshot every running tournament: run it with the engine in use before deploying new rules.")
def snapshot() -> None:
    taken = asyncio.run(snapshot_running(load_settings()))
    for tournament_id, version in taken:
        click.echo(f"{tournament_id} snapshot at version {version}")
    click.echo(f"event: {len(taken)} running tournament(s) snapshotted")
