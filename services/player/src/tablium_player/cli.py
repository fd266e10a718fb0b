"""``tablium-player``: serve, migrate, openapi, create-account."""

from __future__ import annotations

import asyncio

import click
from sqlalchemy import select

from tablium_kit import db
from tablium_kit.cli import service_cli
from tablium_player.app import MIGRATIONS, password_hasher
from tablium_player.db.models import Player
from tablium_player.domain.rules import ROLES, identity_key
from tablium_player.service import create_player
from tablium_player.settings import load_settings

main = service_cli(
    "player", settings=load_settings, app_factory="tablium_player.app:create_app", migrations_dir=MIGRATIONS
)


@main.command("create-account", help="Create an account with roles (the first admin, demo data).")
@click.option("--username", required=True)
@click.option("--email", required=True)
@click.option("--password", required=True, prompt=True, hide_input=True)
@click.option("--role", "roles", multiple=True, type=click.Choice(sorted(ROLES)), help="Repeatable.")
@click.option("--if-missing", is_flag=True, help="Succeed quietly when the username exists.")
def create_account(username: str, email: str, password: str, roles: tuple[str, ...], if_missing: bool) -> None:
    settings = load_settings()

    async def run() -> str:
        engine = db.create_engine(settings.database_url, pool_size=1)
        try:
            async with db.session_factory(engine)() as session, session.begin():
                key = identity_key(username)
                existing = await session.scalar(select(Player).where(Player.username_key == key))
                if existing is not None:
                    if if_missing:
                        return f"player: {username} exists"
                    raise click.ClickException(f"{username} exists")
                player = await create_player(
                    session,
                    password_hasher(settings),
                    username=username,
                    email=email,
                    password=password,
                    roles=sorted({"player", *roles}),
                )
                return f"player: created {username} ({', '.join(player.roles)})"
        finally:
            await engine.dispose()

    click.echo(asyncio.run(run()))
