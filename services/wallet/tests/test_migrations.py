"""The 128-bit migration converts a wallet that already holds money, exactly, and matches the models."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import create_async_engine
from tablium_wallet.app import MIGRATIONS
from tablium_wallet.db.models import Base

from tablium_kit import migrations

BEFORE = "ae58513b2d42"  # bigint amounts


def _differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


async def test_existing_amounts_convert_exactly_and_players_are_backfilled(
    make_database: Callable[[str], Awaitable[str]],
) -> None:
    url = await make_database("wallet_migration")
    await anyio.to_thread.run_sync(migrations.upgrade, url, MIGRATIONS, BEFORE)
    engine = create_async_engine(url)
    player_id, player, clearing, transfer = uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    big = 2**63 - 1
    try:
        async with engine.begin() as connection:
            await connection.execute(
                text(
                    "INSERT INTO accounts (id, owner, kind, asset, flags, credits_posted, debits_pending) VALUES "
                    "(:player, :owner, 'player', 'ETH', 1, :big, 7), "
                    "(:clearing, 'chain:1', 'chain_clearing', 'ETH', 0, 0, 0)"
                ),
                {"player": player, "owner": f"player:{player_id}", "clearing": clearing, "big": big},
            )
            await connection.execute(
                text("UPDATE accounts SET debits_posted = :big WHERE id = :clearing"),
                {"big": big, "clearing": clearing},
            )
            await connection.execute(
                text(
                    "INSERT INTO transfers (id, debit_account_id, credit_account_id, amount, asset, code, flags, "
                    "metadata, created_at) VALUES (:id, :clearing, :player, :big, 'ETH', 'deposit', 0, '{}', now())"
                ),
                {"id": transfer, "clearing": clearing, "player": player, "big": big},
            )
            await connection.execute(
                text(
                    "INSERT INTO audit_log (id, actor, action, amount, reason, details) "
                    "VALUES (:id, 'a', 'admin_credit', :big, 'r', '{}')"
                ),
                {"id": uuid.uuid4(), "big": big},
            )
    finally:
        await engine.dispose()

    await anyio.to_thread.run_sync(migrations.upgrade, url, MIGRATIONS, "head")
    # A new engine: asyncpg's prepared statements of the old one still expect bigint parameters.
    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            counters = (
                await connection.execute(
                    text("SELECT credits_posted, debits_pending, debits_posted FROM accounts ORDER BY kind DESC")
                )
            ).all()
            assert [tuple(int(v) for v in row) for row in counters] == [(big, 7, 0), (0, 0, big)]
            assert await connection.scalar(text("SELECT amount FROM transfers")) == big
            assert await connection.scalar(text("SELECT amount FROM audit_log")) == big
            types = (
                await connection.execute(
                    text(
                        "SELECT DISTINCT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attname IN "
                        "('amount', 'debits_pending', 'debits_posted', 'credits_pending', 'credits_posted') "
                        "AND attrelid IN ('accounts'::regclass, 'transfers'::regclass, 'audit_log'::regclass)"
                    )
                )
            ).scalars()
            assert list(types) == ["numeric(39,0)"]
            # Every player who had an account is a registered player.
            assert (await connection.execute(text("SELECT id FROM players"))).scalars().all() == [player_id]
            assert await connection.run_sync(_differences) == []
            # Now 128 bits fit, and no more.
            await connection.execute(
                text("UPDATE accounts SET credits_posted = :max WHERE id = :player"),
                {"max": 2**128 - 1, "player": player},
            )
        with pytest.raises(IntegrityError):
            async with engine.begin() as connection:
                await connection.execute(
                    text("UPDATE accounts SET debits_posted = :over WHERE id = :clearing"),
                    {"over": 2**128, "clearing": clearing},
                )
    finally:
        await engine.dispose()
