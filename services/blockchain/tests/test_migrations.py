"""The migrations build exactly the models' schema, and undo cleanly."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import anyio
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from tablium_blockchain.app import MIGRATIONS
from tablium_blockchain.db.models import Base

from tablium_kit import migrations


def _differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


async def test_migrations_match_the_models_and_downgrade(make_database: Callable[[str], Awaitable[str]]) -> None:
    url = await make_database("blockchain_migration")
    await anyio.to_thread.run_sync(migrations.upgrade, url, MIGRATIONS)
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            assert await connection.run_sync(_differences) == []
    finally:
        await engine.dispose()
    config = migrations.alembic_config(url, MIGRATIONS)
    await anyio.to_thread.run_sync(command.downgrade, config, "base")
    await anyio.to_thread.run_sync(migrations.upgrade, url, MIGRATIONS)
