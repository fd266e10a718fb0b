"""Migrations on databases with accounts: identity keys back-filled, stats tables added and removed."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import anyio
import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tablium_kit.migrations import alembic_config, upgrade
from tablium_player.app import MIGRATIONS

BEFORE_KEYS = "0ee94424ee2f"
BEFORE_STATS, STATS = "5b1f0c7d2e94", "27cea7614d8c"


@pytest.fixture
async def old_database(make_database: Callable[[str], Awaitable[str]]) -> str:
    url = await make_database("player_keys")
    await anyio.to_thread.run_sync(upgrade, url, MIGRATIONS, BEFORE_KEYS)
    return url


async def test_keys_are_back_filled_and_the_oldest_account_keeps_a_collided_key(old_database: str) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    # Under lower() these were four distinct accounts; folded, the second and fourth clash with older ones.
    accounts = [
        ("Alice", "Strasse@example.com"),
        ("bob", "STRASSE@example.com".replace("SS", "\u1e9e")),  # capital sharp s: "STRAẞE", folds to "strasse"
        ("carol", "\u0130nfo@example.com"),
        ("dave", "i\u0307nfo@example.com"),
    ]
    ids = [uuid.uuid4() for _ in accounts]
    engine = create_async_engine(old_database)
    async with engine.begin() as conn:
        for n, (player_id, (username, email)) in enumerate(zip(ids, accounts, strict=True)):
            await conn.execute(
                text(
                    "INSERT INTO players (id, username, email, password_hash, roles, preferences, xp, level,"
                    " hands_played, hands_vpip, hands_pfr, tournaments_played, net_winnings, created_at, updated_at)"
                    " VALUES (:id, :username, :email, 'x', '{player}', '{}', 0, 1, 0, 0, 0, 0, 0, :at, :at)"
                ),
                {"id": player_id, "username": username, "email": email, "at": start + timedelta(minutes=n)},
            )
    await anyio.to_thread.run_sync(upgrade, old_database, MIGRATIONS, "head")
    async with engine.connect() as conn:
        rows = (await conn.execute(text("SELECT id, username_key, email_key FROM players"))).all()
    await engine.dispose()
    keys = {row.id: (row.username_key, row.email_key) for row in rows}
    assert keys == {
        ids[0]: ("alice", "strasse@example.com"),
        ids[1]: ("bob", None),  # newer than Alice's address: left for support, logs in by username
        ids[2]: ("carol", "i\u0307nfo@example.com"),
        ids[3]: ("dave", None),
    }


async def test_stats_tables_come_and_go_with_their_revision(old_database: str) -> None:
    """27cea7614d8c on a database with accounts: the stats tables appear, the unused players.net_winnings
    goes; downgraded, the column is back (0 for every account) and the tables are gone."""
    engine = create_async_engine(old_database)
    player_id = uuid.uuid4()
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO players (id, username, email, password_hash, roles, preferences, xp, level,"
                " hands_played, hands_vpip, hands_pfr, tournaments_played, net_winnings, created_at, updated_at)"
                " VALUES (:id, 'erin', 'erin@example.com', 'x', '{player}', '{}', 0, 1, 0, 0, 0, 0, 0, now(), now())"
            ),
            {"id": player_id},
        )
    await anyio.to_thread.run_sync(upgrade, old_database, MIGRATIONS, STATS)

    async def columns_and_tables() -> tuple[set[str], set[str]]:
        async with engine.connect() as conn:
            columns = set(
                (
                    await conn.execute(
                        text("SELECT column_name FROM information_schema.columns WHERE table_name = 'players'")
                    )
                ).scalars()
            )
            tables = set(
                (
                    await conn.execute(
                        text("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")
                    )
                ).scalars()
            )
        return columns, tables

    columns, tables = await columns_and_tables()
    assert "net_winnings" not in columns
    assert {"played_hands", "player_asset_stats"} <= tables
    await anyio.to_thread.run_sync(lambda: command.downgrade(alembic_config(old_database, MIGRATIONS), BEFORE_STATS))
    columns, tables = await columns_and_tables()
    assert "net_winnings" in columns
    assert not {"played_hands", "player_asset_stats"} & tables
    async with engine.connect() as conn:
        assert await conn.scalar(text("SELECT net_winnings FROM players WHERE id = :id"), {"id": player_id}) == 0
    await engine.dispose()
