"""Outbox + relay against the real Postgres and RabbitMQ: nothing lost, nothing published twice in effect."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import msgspec
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tablium_kit.messaging import Consumer, events_committed
from tablium_kit.messaging.testing import AmqpNames

from .conftest import (
    TABLES,
    Listener,
    close_my_broker_connections,
    effect_counts,
    make_relay,
    outbox,
    players,
    record_effect,
    register,
    settings_for,
    unpublished,
    wait_until,
)


@pytest.fixture
async def wallet(sessions: async_sessionmaker[AsyncSession], amqp_names: AmqpNames) -> AsyncIterator[Consumer]:
    """The consuming service: records one effect per handled player.registered."""
    consumer = Consumer(
        settings_for("wallet", amqp_names), sessions, TABLES, queues=amqp_names.service_queues("wallet")
    )
    consumer.handler("player.registered")(record_effect)
    await consumer.start()
    yield consumer
    await consumer.stop()


async def test_committed_event_is_published_once_and_rolled_back_one_never(
    sessions: async_sessionmaker[AsyncSession],
    amqp_names: AmqpNames,
    listen: Callable[[str], Awaitable[Listener]],
    wallet: Consumer,
) -> None:
    listener = await listen("player.registered")
    relay = make_relay(sessions, amqp_names, poll_interval=30.0)  # only the commit hook can wake it in time
    await relay.start()
    await asyncio.sleep(0.5)  # connected, found nothing, now asleep until woken
    try:
        committed = await register(sessions, "alice")
        rolled_back: list[str] = []

        async def register_but_fail() -> None:
            async with sessions() as session, session.begin():
                await session.execute(players.insert().values(id="bob"))
                event = await outbox.add(session, type="player.registered", subject="bob", data={})
                rolled_back.append(str(event.id))
                raise RuntimeError("the change fails after its event was added")

        with pytest.raises(RuntimeError):
            await register_but_fail()

        async def handled() -> bool:
            return await effect_counts(sessions) == {committed: 1}

        await wait_until(handled, within=5)
        await asyncio.sleep(0.5)  # would a second copy, or the rolled-back event, still arrive?
    finally:
        await relay.stop()
    assert listener.ids == [committed]
    assert rolled_back
    assert rolled_back[0] not in listener.ids
    assert await effect_counts(sessions) == {committed: 1}
    assert await unpublished(sessions) == 0


async def test_broker_dropping_connections_mid_stream_loses_nothing_and_duplicates_no_effect(
    sessions: async_sessionmaker[AsyncSession], amqp_names: AmqpNames, wallet: Consumer
) -> None:
    relay = make_relay(sessions, amqp_names, batch_size=20)
    await relay.start()
    ids: list[str] = []
    enough = asyncio.Event()
    restarts = REGISTRY.get_sample_value("tablium_consumer_restarts_total", {"service": "wallet"}) or 0.0

    async def produce() -> None:
        # A steady stream until both drops are behind us, so they land in the middle of it.
        while not enough.is_set():
            ids.append(await register(sessions, f"p{len(ids)}"))
            await asyncio.sleep(0.005)

    producer = asyncio.create_task(produce())
    try:
        for _ in range(2):
            handled = len(await effect_counts(sessions))
            await wait_until(lambda n=handled + 40: _at_least(sessions, n))  # type: ignore[misc]
            assert await close_my_broker_connections() >= 2  # the relay's and the consumer's
            assert not producer.done()
        await asyncio.sleep(0.3)
        enough.set()
        await producer

        async def all_handled() -> bool:
            return len(await effect_counts(sessions)) == len(ids)

        await wait_until(all_handled, within=40)
        await asyncio.sleep(0.5)  # would a redelivery take effect a second time?
    finally:
        enough.set()
        producer.cancel()
        await relay.stop()
    counts = await effect_counts(sessions)
    assert len(ids) > 100
    assert sorted(counts) == sorted(ids)
    assert set(counts.values()) == {1}
    assert await unpublished(sessions) == 0
    # Each drop is a consumer restart (what /ready showed as failed meanwhile), and it runs again.
    assert (REGISTRY.get_sample_value("tablium_consumer_restarts_total", {"service": "wallet"}) or 0.0) >= restarts + 2
    assert wallet.state == "running"


async def _at_least(sessions: async_sessionmaker[AsyncSession], n: int) -> bool:
    return len(await effect_counts(sessions)) >= n


async def test_relay_killed_between_publish_and_mark_is_repaired_by_the_next_relay(
    sessions: async_sessionmaker[AsyncSession],
    amqp_names: AmqpNames,
    listen: Callable[[str], Awaitable[Listener]],
    wallet: Consumer,
) -> None:
    listener = await listen("player.registered")
    ids = [await register(sessions, f"c{i}") for i in range(50)]

    # A real process, SIGKILLed after the broker confirmed the batch but before the mark committed.
    doomed = await asyncio.create_subprocess_exec(
        sys.executable,
        str(Path(__file__).with_name("relay_process.py")),
        sessions.kw["bind"].url.render_as_string(hide_password=False),
        amqp_names.exchange,
        stdout=asyncio.subprocess.PIPE,
    )
    assert doomed.stdout is not None
    # A guard against a hang, not a speed check: a fresh interpreter importing the kit on a busy machine is slow.
    async with asyncio.timeout(60):
        assert await doomed.stdout.readline() == b"published\n"
    doomed.kill()
    await doomed.wait()
    await wait_until(lambda: _count(listener, 50))

    async def all_unpublished() -> bool:  # the dead transaction is rolled back, its locks released
        return await unpublished(sessions) == 50

    await wait_until(all_unpublished)

    successor = make_relay(sessions, amqp_names)
    await successor.start()
    try:
        await wait_until(lambda: _count(listener, 100))

        async def settled() -> bool:
            return await unpublished(sessions) == 0 and len(await effect_counts(sessions)) == 50

        await wait_until(settled)
        await asyncio.sleep(0.3)
    finally:
        await successor.stop()
    assert sorted(listener.ids) == sorted(ids * 2)  # every event went out twice...
    assert await effect_counts(sessions) == dict.fromkeys(ids, 1)  # ...and took effect once


async def _count(listener: Listener, n: int) -> bool:
    return len(listener.messages) >= n


async def test_concurrent_relays_share_the_outbox_without_publishing_twice(
    sessions: async_sessionmaker[AsyncSession],
    amqp_names: AmqpNames,
    listen: Callable[[str], Awaitable[Listener]],
) -> None:
    listener = await listen("player.registered")
    ids = [await register(sessions, f"r{i}") for i in range(200)]
    relays = [make_relay(sessions, amqp_names, batch_size=10) for _ in range(3)]
    for relay in relays:
        await relay.start()
    try:

        async def drained() -> bool:
            return await unpublished(sessions) == 0

        await wait_until(drained)
        await wait_until(lambda: _count(listener, 200))
        await asyncio.sleep(0.3)
    finally:
        for relay in relays:
            await relay.stop()
    assert sorted(listener.ids) == sorted(ids)


def test_outbox_refuses_types_outside_its_catalog_entry() -> None:
    from tablium_kit.messaging import UnknownEventError

    with pytest.raises(UnknownEventError):
        asyncio.run(outbox.add(None, type="wallet.transfer_posted", subject="x", data={}))  # type: ignore[arg-type]
    with pytest.raises(UnknownEventError):
        asyncio.run(outbox.add(None, type="player.unheard_of", subject="x", data={}))  # type: ignore[arg-type]


async def test_several_events_added_in_one_statement_are_published_once_each_in_order(
    sessions: async_sessionmaker[AsyncSession],
    amqp_names: AmqpNames,
    listen: Callable[[str], Awaitable[Listener]],
) -> None:
    listener = await listen("player.registered")
    async with sessions() as session, session.begin():
        added = await outbox.add_many(
            session, [("player.registered", name, {"n": i}) for i, name in enumerate(("ann", "ben", "cy"))]
        )
    relay = make_relay(sessions, amqp_names)
    await relay.start()
    try:

        async def published() -> bool:
            return len(listener.ids) == 3

        await wait_until(published)
    finally:
        await relay.stop()
    assert listener.ids == [str(event.id) for event in added]
    assert await unpublished(sessions) == 0
    async with sessions() as session:
        assert await outbox.add_many(session, []) == []


async def test_an_event_written_by_a_statement_of_its_own_is_the_row_add_writes_and_wakes_the_relay(
    sessions: async_sessionmaker[AsyncSession],
    amqp_names: AmqpNames,
    listen: Callable[[str], Awaitable[Listener]],
    wallet: Consumer,
) -> None:
    """``Outbox.row`` renders what ``add`` inserts (a caller's own statement writes it, the lobby's hand end):
    the same columns, and after ``events_committed`` a relay asleep publishes it at once, as after add."""
    listener = await listen("player.registered")
    relay = make_relay(sessions, amqp_names, poll_interval=30.0)  # only a wake-up can publish it in time
    await relay.start()
    await asyncio.sleep(0.5)
    try:
        event, row = outbox.row(type="player.registered", subject="carol", data={"player_id": "carol"})
        async with sessions() as session, session.begin():
            await session.execute(players.insert().values(id="carol"))
            await session.execute(
                text(
                    "INSERT INTO outbox (id, type, subject, envelope, headers) VALUES (:id, :type, :subject, "
                    "CAST(:envelope_text AS jsonb), CAST(:headers_text AS jsonb))"
                ),
                row,
            )
            session.info.clear()  # no add: the session's own commit hook has nothing to wake
        async with sessions() as session:
            written = (
                await session.execute(
                    text("SELECT type, subject, envelope, headers FROM outbox WHERE id = :id"), {"id": event.id}
                )
            ).one()
        events_committed()

        async def handled() -> bool:
            return await effect_counts(sessions) == {str(event.id): 1}

        await wait_until(handled, within=5)
    finally:
        await relay.stop()
    assert listener.ids == [str(event.id)]
    assert written.type == "player.registered"
    assert written.subject == "carol"
    assert written.envelope == msgspec.json.decode(msgspec.json.encode(event))
    assert written.headers == msgspec.json.decode(row["headers_text"])
