"""The platform's shape: readiness covers the database, Redis and the broker; migrations match the models."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import anyio
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from litestar.testing import AsyncTestClient
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from tablium_lobby.app import MIGRATIONS
from tablium_lobby.db.models import Base

from tablium_kit import migrations


async def test_ready_checks_database_redis_and_broker(client: AsyncTestClient) -> None:
    assert (await client.get("/health")).json() == {"status": "ok"}
    for _ in range(50):
        ready = await client.get("/ready")
        if ready.status_code == 200:
            break
        await anyio.sleep(0.1)
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {"database": "up", "redis": "up", "broker": "up"}
    metrics = await client.get("/metrics")
    assert metrics.status_code == 200
    assert "tablium_requests" in metrics.text


def _differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


async def test_migrations_match_the_models(make_database: Callable[[str], Awaitable[str]]) -> None:
    url = await make_database("lobby_migrations")
    await anyio.to_thread.run_sync(migrations.upgrade, url, MIGRATIONS, "head")
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            assert await connection.run_sync(_differences) == []
    finally:
        await engine.dispose()
