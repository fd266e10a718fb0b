"""Item 1 of issue 11: a 60-second database outage under a stream of events sends nothing to the DLQ.

The consumer's database is a private Postgres (the kit's ``private_postgres`` fixture: ``initdb`` + ``pg_ctl``
on a free port), really stopped for 60 seconds and started again: the shared one serves everybody else's tests.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tablium_kit.db import create_engine, ensure_database, session_factory
from tablium_kit.messaging import Consumer, list_dead_letters
from tablium_kit.messaging.envelope import new_event
from tablium_kit.messaging.testing import AmqpNames
from tablium_kit.private_infra import PrivatePostgres

from .conftest import TABLES, Base, effect_counts, record_effect, settings_for, wait_until
from .test_hardening import publish_event

OUTAGE_S = 60


@pytest.fixture
async def outage_sessions(private_postgres: PrivatePostgres) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    await ensure_database(private_postgres.url_for("outage"))
    engine = create_engine(private_postgres.url_for("outage"))
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    yield session_factory(engine)
    await engine.dispose()


@pytest.mark.slow
async def test_a_minute_long_database_outage_dead_letters_nothing_and_handles_everything_once(
    private_postgres: PrivatePostgres,
    outage_sessions: async_sessionmaker[AsyncSession],
    amqp_names: AmqpNames,
) -> None:
    queues = amqp_names.service_queues("wallet")
    # Few, quick retries: before, the stream of one minute would have gone to the DLQ within seconds.
    consumer = Consumer(
        settings_for("wallet", amqp_names),
        outage_sessions,
        TABLES,
        queues=queues,
        max_attempts=3,
        retry_delay=0.05,
        max_infra_backoff=2.0,
    )
    consumer.handler("player.registered")(record_effect)
    await consumer.start()
    ids: list[str] = []

    async def send(n: int, every: float) -> None:
        for _ in range(n):
            event = new_event(service="player", type="player.registered", subject=f"o{len(ids)}", data={})
            await publish_event(amqp_names, event)
            ids.append(str(event.id))
            await asyncio.sleep(every)

    try:
        await send(20, 0.02)

        async def first_handled() -> bool:
            return len(await effect_counts(outage_sessions)) == 20

        await wait_until(first_handled)
        await asyncio.to_thread(private_postgres.stop)
        try:
            await send(OUTAGE_S * 2, 0.5)  # a steady stream for the whole minute the database is down
        finally:
            await asyncio.to_thread(private_postgres.start)
        await send(20, 0.02)

        async def all_handled() -> bool:
            return len(await effect_counts(outage_sessions)) == len(ids)

        await wait_until(all_handled, within=60)
        await asyncio.sleep(0.5)  # would a redelivery take effect twice?
        counts = await effect_counts(outage_sessions)
    finally:
        await consumer.stop()
    assert sorted(counts) == sorted(ids)
    assert set(counts.values()) == {1}
    assert await list_dead_letters(amqp_names.url, queues) == []
