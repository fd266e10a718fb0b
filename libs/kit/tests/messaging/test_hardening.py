"""Issue 11: what could lose, stall or forge events, each against the real Postgres and RabbitMQ."""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import aio_pika
import asyncpg
import httpx
import pytest
import sqlalchemy.exc
from litestar.testing import AsyncTestClient
from prometheus_client import REGISTRY
from sqlalchemy import insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tablium_kit.app import ServiceDefinition, create_service_app
from tablium_kit.internal import UpstreamError
from tablium_kit.messaging import CloudEvent, Consumer, list_dead_letters
from tablium_kit.messaging.envelope import MAX_EVENT_BYTES, MAX_MESSAGE_BYTES, encode, new_event
from tablium_kit.messaging.failures import infrastructure_failure
from tablium_kit.messaging.outbox import EventTooLargeError
from tablium_kit.messaging.testing import AmqpNames, signed_message
from tablium_kit.messaging.topology import QueueNames, declare_topology

from .conftest import (
    TABLES,
    Listener,
    _rabbitmqctl,
    effect_counts,
    make_relay,
    outbox,
    record_effect,
    register,
    settings_for,
    wait_until,
)


def sample(name: str, labels: dict[str, str]) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def publish_event(amqp_names: AmqpNames, event: CloudEvent) -> None:
    connection = await aio_pika.connect(amqp_names.url)
    async with connection:
        channel = await connection.channel()
        exchange = await channel.get_exchange(amqp_names.exchange)
        await exchange.publish(
            signed_message(encode(event), message_id=str(event.id), delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
            routing_key=event.type,
        )


@pytest.fixture
async def started() -> AsyncIterator[list[Consumer]]:
    consumers: list[Consumer] = []
    yield consumers
    for consumer in consumers:
        await consumer.stop()


async def test_queues_dead_letter_at_least_once(
    sessions: async_sessionmaker[AsyncSession], amqp_names: AmqpNames, started: list[Consumer]
) -> None:
    """Item 2: both broker-side hops (retry → main, main → DLQ) are at-least-once, so never drop a message."""
    queues = amqp_names.service_queues("wallet")
    consumer = Consumer(settings_for("wallet", amqp_names), sessions, TABLES, queues=queues)
    consumer.handler("player.registered")(record_effect)
    await consumer.start()
    started.append(consumer)
    listing = json.loads(await _rabbitmqctl("list_queues", "--formatter", "json", "name", "arguments"))
    arguments = {q["name"]: {name: value for name, _, value in q["arguments"]} for q in listing}
    for name in (queues.main, queues.retry):
        assert arguments[name]["x-dead-letter-strategy"] == "at-least-once", name
        assert arguments[name]["x-overflow"] == "reject-publish", name
    assert queues.main.endswith(".events.v2")  # a new name: the v1 queues' arguments can't change in place


async def test_topology_from_the_catalog_keeps_events_published_before_the_consumer_first_starts(
    sessions: async_sessionmaker[AsyncSession], amqp_names: AmqpNames, started: list[Consumer]
) -> None:
    """Item 3: the deploy step declares every consumer's queue; the relay publishes before wallet ever ran."""
    prefix = amqp_names.queue_prefix()
    declared = await declare_topology(amqp_names.url, amqp_names.exchange, prefix=prefix)
    amqp_names.track(*declared.values())
    assert declared["wallet"] == QueueNames.for_service("wallet", prefix)
    ids = [await register(sessions, f"early{i}") for i in range(5)]
    relay = make_relay(sessions, amqp_names)
    await relay.start()
    try:

        async def published() -> bool:
            async with sessions() as session:
                left = await session.scalar(text("SELECT count(*) FROM outbox WHERE published_at IS NULL"))
            return left == 0

        await wait_until(published)
    finally:
        await relay.stop()
    consumer = Consumer(settings_for("wallet", amqp_names), sessions, TABLES, queues=declared["wallet"])
    consumer.handler("player.registered")(record_effect)
    await consumer.start()
    started.append(consumer)

    async def handled() -> bool:
        return sorted(await effect_counts(sessions)) == sorted(ids)

    await wait_until(handled)
    await consumer.stop()
    await delete_queues(amqp_names, *declared.values())  # the next tests want player.level_up unroutable


async def delete_queues(amqp_names: AmqpNames, *names: QueueNames) -> None:
    connection = await aio_pika.connect(amqp_names.url)
    async with connection:
        channel = await connection.channel()
        for each in names:
            for name in (each.main, each.retry, each.dlq):
                await channel.queue_delete(name)


async def test_a_returned_event_is_not_published_and_a_poison_row_is_parked_without_stalling_the_rest(
    sessions: async_sessionmaker[AsyncSession],
    amqp_names: AmqpNames,
    listen: Callable[[str], Awaitable[Listener]],
) -> None:
    """Items 3 and 4. ``player.level_up`` has a consumer in the catalog but no queue here: mandatory
    publishing gets it back, so it stays in the outbox (today it would be marked sent and lost). A row too
    big to send is parked at once. Either way only later events of the same subject wait."""
    registered = await listen("player.registered")
    async with sessions() as session, session.begin():
        returned = await outbox.add(session, type="player.level_up", subject="p-returned", data={"level": 2})
        big = new_event(
            service="player", type="player.registered", subject="p-big", data={"x": "y" * MAX_MESSAGE_BYTES}
        )
        await session.execute(
            insert(TABLES.outbox).values(
                id=big.id, type=big.type, subject=big.subject, envelope=json.loads(encode(big))
            )
        )
    behind_big = await register(sessions, "p-big")  # same subject as the big one: must wait behind it
    others = [await register(sessions, f"free{i}") for i in range(20)]
    parked_before = sample("tablium_outbox_parked_total", {"service": "player", "reason": "too_large"})
    relay = make_relay(sessions, amqp_names, park_after=3, batch_size=10, poll_interval=0.05)
    await relay.start()
    try:

        async def others_out() -> bool:
            return sorted(m for m in registered.ids if m in others) == sorted(others)

        await wait_until(others_out)

        async def refused_once() -> bool:
            return await attempts_of(sessions, returned.id) >= 1

        await wait_until(refused_once)
        # Routable, but behind a refused event of its subject (in a later batch: within the batch that
        # meets the refusal, a later event of the subject is already in flight, ADR 0002).
        behind_returned = await register(sessions, "p-returned")

        async def returned_parked() -> bool:
            return await attempts_of(sessions, returned.id) >= 3

        await wait_until(returned_parked)
        await asyncio.sleep(0.5)
    finally:
        await relay.stop()
    assert str(big.id) not in registered.ids
    assert behind_big not in registered.ids
    assert behind_returned not in registered.ids
    assert await attempts_of(sessions, big.id) == 3
    assert sample("tablium_outbox_parked_total", {"service": "player", "reason": "too_large"}) == parked_before + 1
    async with sessions() as session:
        unpublished = set(
            (await session.scalars(select(TABLES.outbox.c.id).where(TABLES.outbox.c.published_at.is_(None)))).all()
        )
    assert unpublished == {returned.id, big.id, uuid.UUID(behind_big), uuid.UUID(behind_returned)}


async def attempts_of(sessions: async_sessionmaker[AsyncSession], event_id: uuid.UUID) -> int:
    async with sessions() as session:
        return await session.scalar(select(TABLES.outbox.c.attempts).where(TABLES.outbox.c.id == event_id)) or 0


async def test_an_event_over_the_cap_is_refused_at_write_time(sessions: async_sessionmaker[AsyncSession]) -> None:
    """Item 5: the writer learns at once, in its transaction, rather than the relay or the broker later."""
    async with sessions() as session, session.begin():
        with pytest.raises(EventTooLargeError, match="split"):
            await outbox.add(session, type="player.registered", subject="huge", data={"x": "y" * MAX_EVENT_BYTES})


async def test_ready_shows_a_consumer_that_cannot_declare_its_queue_and_counts_its_restarts(
    make_database: Callable[[str], Awaitable[str]], amqp_names: AmqpNames, run_id: str
) -> None:
    """Item 6: a queue left with other arguments (PRECONDITION_FAILED) keeps the consumer down, visibly."""
    from .conftest import Base

    service = f"svc{run_id}"
    names = QueueNames.for_service(service)
    amqp_names.track(names)
    connection = await aio_pika.connect(amqp_names.url)
    async with connection:
        channel = await connection.channel()
        await channel.declare_queue(names.dlq, durable=True)  # a classic queue where a quorum one belongs
    url = await make_database("ready")
    from tablium_kit.db import create_engine

    engine = create_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    await engine.dispose()
    settings = settings_for(service, amqp_names)
    settings.database_url = url
    app = create_service_app(
        ServiceDefinition(
            settings=settings,
            route_handlers=[],
            title="ready",
            messaging=TABLES,
            event_handlers={"player.registered": record_effect},
        )
    )
    restarts_before = sample("tablium_consumer_restarts_total", {"service": service})
    async with AsyncTestClient(app) as client:

        async def refused() -> bool:
            return sample("tablium_consumer_restarts_total", {"service": service}) >= restarts_before + 2

        await wait_until(refused)
        ready = await client.get("/ready")
    assert ready.status_code == 503
    consumer_check = ready.json()["checks"]["consumer"]
    assert consumer_check.startswith("down: failed: ChannelPreconditionFailed"), consumer_check
    assert "PRECONDITION_FAILED" in consumer_check


async def test_an_ordered_handler_sees_one_subjects_events_in_delivery_order(
    sessions: async_sessionmaker[AsyncSession], amqp_names: AmqpNames, started: list[Consumer]
) -> None:
    """Item 8: deliveries run concurrently; ``ordered=True`` serialises one subject's, in order."""
    consumer = Consumer(
        settings_for("wallet", amqp_names), sessions, TABLES, queues=amqp_names.service_queues("wallet")
    )
    seen: dict[str, list[int]] = {"a": [], "b": []}

    @consumer.handler("player.registered", ordered=True)
    async def handle(session: AsyncSession, event: CloudEvent) -> None:
        await asyncio.sleep(random.uniform(0, 0.03))  # would let a later delivery overtake
        seen[event.subject].append(event.data["n"])

    await consumer.start()
    started.append(consumer)
    for n in range(30):
        for subject in ("a", "b"):
            await publish_event(
                amqp_names, new_event(service="player", type="player.registered", subject=subject, data={"n": n})
            )

    async def all_seen() -> bool:
        return len(seen["a"]) + len(seen["b"]) == 60

    await wait_until(all_seen)
    assert seen == {"a": list(range(30)), "b": list(range(30))}


async def test_an_event_whose_source_is_not_its_publisher_is_dead_lettered_as_forged(
    sessions: async_sessionmaker[AsyncSession], amqp_names: AmqpNames, started: list[Consumer]
) -> None:
    """Item 10: only the player service states player.registered; anyone else is refused, visibly."""
    queues = amqp_names.service_queues("wallet")
    consumer = Consumer(settings_for("wallet", amqp_names), sessions, TABLES, queues=queues)
    consumer.handler("player.registered")(record_effect)
    await consumer.start()
    started.append(consumer)
    forged_before = sample("tablium_events_dead_lettered_total", {"service": "wallet", "reason": "forged"})
    forged = new_event(service="wallet", type="player.registered", subject="p-forged", data={})
    genuine = new_event(service="player", type="player.registered", subject="p-genuine", data={})
    await publish_event(amqp_names, forged)
    await publish_event(amqp_names, genuine)

    async def settled() -> bool:
        return bool(await effect_counts(sessions)) and bool(await list_dead_letters(amqp_names.url, queues))

    await wait_until(settled)
    (letter,) = await list_dead_letters(amqp_names.url, queues)
    assert (letter.message_id, letter.reason) == (str(forged.id), "forged")
    assert "/services/wallet" in letter.error
    assert await effect_counts(sessions) == {str(genuine.id): 1}
    assert sample("tablium_events_dead_lettered_total", {"service": "wallet", "reason": "forged"}) == forged_before + 1


async def test_a_retry_copy_with_nowhere_to_go_leaves_the_original_in_the_queue(
    sessions: async_sessionmaker[AsyncSession], amqp_names: AmqpNames, started: list[Consumer]
) -> None:
    """Retry and dead-letter copies are published mandatory with returns raised: with the retry queue gone,
    the original is not acked for a copy that went nowhere. It comes back until the queue's delivery limit
    dead-letters it (at least once): in the DLQ, not lost."""
    queues = amqp_names.service_queues("wallet")
    consumer = Consumer(settings_for("wallet", amqp_names), sessions, TABLES, queues=queues)

    @consumer.handler("player.registered")
    async def fail(session: AsyncSession, event: CloudEvent) -> None:
        raise RuntimeError("poison")

    await consumer.start()
    started.append(consumer)
    connection = await aio_pika.connect(amqp_names.url)
    async with connection:
        await (await connection.channel()).queue_delete(queues.retry)
    event = new_event(service="player", type="player.registered", subject="p-nowhere", data={})
    await publish_event(amqp_names, event)

    async def dead_lettered() -> bool:
        return bool(await list_dead_letters(amqp_names.url, queues))

    await wait_until(dead_lettered, within=30)
    (letter,) = await list_dead_letters(amqp_names.url, queues)
    assert (letter.message_id, letter.reason) == (str(event.id), "delivery_limit")


def _wrapped(exc: BaseException) -> BaseException:
    """``exc`` as a handler's own code would let it escape: raised from inside another exception."""
    try:
        try:
            raise exc
        except BaseException as inner:
            raise RuntimeError("while handling the event") from inner
    except RuntimeError as outer:
        return outer


@pytest.mark.parametrize(
    ("exc", "infrastructure"),
    [
        (ConnectionRefusedError(111, "Connect call failed"), True),
        (TimeoutError(), True),
        (sqlalchemy.exc.OperationalError("SELECT 1", {}, asyncpg.exceptions.CannotConnectNowError()), True),
        (sqlalchemy.exc.DBAPIError("UPDATE", {}, asyncpg.exceptions.SerializationError()), True),
        (sqlalchemy.exc.DBAPIError("UPDATE", {}, asyncpg.exceptions.DeadlockDetectedError()), True),
        (httpx.ConnectError("refused"), True),
        (UpstreamError("wallet", 503, {}), True),
        (UpstreamError("wallet", 409, {"detail": "conflict"}), False),
        (sqlalchemy.exc.IntegrityError("INSERT", {}, asyncpg.exceptions.UniqueViolationError()), False),
        (KeyError("amount"), False),
        (ValueError("bad data"), False),
    ],
)
def test_infrastructure_failures_are_told_from_poison(exc: BaseException, infrastructure: bool) -> None:
    """Item 1: what is retried in place without limit, and what goes the retry/DLQ way."""
    assert infrastructure_failure(exc) is infrastructure
    assert infrastructure_failure(_wrapped(exc)) is infrastructure
