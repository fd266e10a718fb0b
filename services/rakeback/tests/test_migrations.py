"""The migrations build exactly the models' schema, and amounts take 128 bits and no more."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import anyio
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import create_async_engine
from tablium_rakeback.app import MIGRATIONS
from tablium_rakeback.db.models import Base

from tablium_kit import migrations


def _differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


async def test_the_migrations_match_the_models(make_database: Callable[[str], Awaitable[str]]) -> None:
    url = await make_database("rakeback_migration")
    await anyio.to_thread.run_sync(migrations.upgrade, url, MIGRATIONS, "head")
    engine = create_async_engine(url)
    insert = text(
        "INSERT INTO accruals (hand_id, player_id, kind, beneficiary, asset, amount, bps, hand_time) "
        "VALUES (:h, :p, 'player', 'x', 'ETH', :amount, 100, :t)"
    )
    try:
        async with engine.begin() as connection:
            assert await connection.run_sync(_differences) == []
            values = {"h": uuid.uuid4(), "p": uuid.uuid4(), "amount": 2**128 - 1, "t": datetime.now(UTC)}
            await connection.execute(insert, values)
            # A paid tournament fee's reversal is negative (events/entry_fee_refunds.py).
            await connection.execute(insert, {**values, "h": uuid.uuid4(), "amount": -(2**128 - 1)})
        with pytest.raises(IntegrityError):
            async with engine.begin() as connection:
                await connection.execute(insert, {**values, "h": uuid.uuid4(), "amount": 2**128})
        with pytest.raises(IntegrityError):
            async with engine.begin() as connection:
                await connection.execute(insert, {**values, "h": uuid.uuid4(), "amount": -(2**128)})
    finally:
        await engine.dispose()
