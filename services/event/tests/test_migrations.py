"""The event service's migrations match its models (amounts NUMERIC(39,0) included)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import anyio
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from tablium_event.app import MIGRATIONS
from tablium_event.db.models import Base

from tablium_kit import migrations


def _differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


async def test_money_columns_are_numeric_39_0_as_the_models_say(make_database: Callable[[str], Awaitable[str]]) -> None:
    url = await make_database("event_migration")
    await anyio.to_thread.run_sync(migrations.upgrade, url, MIGRATIONS)
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            types = await connection.execute(
                text(
                    "SELECT DISTINCT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attname = 'amount' "
                    "AND attrelid IN ('registrations'::regclass, 'prizes'::regclass, 'purchases'::regclass)"
                )
            )
            assert list(types.scalars()) == ["numeric(39,0)"]
            assert await connection.run_sync(_differences) == []
    finally:
        await engine.dispose()
