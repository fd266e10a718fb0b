"""Batched consumption (ADR 0002): one transaction and one ack per batch, each event still once."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import aio_pika
import pytest
from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tablium_kit.messaging import CloudEvent, Consumer, QueueNames, handles_batches, list_dead_letters
from tablium_kit.messaging.batches import Deliveries
from tablium_kit.messaging.envelope import encode, new_event
from tablium_kit.messaging.testing import AmqpNames, signed_message

from .conftest import TABLES, effect_counts, record_effect, settings_for, wait_until


@pytest.fixture
async def started() -> AsyncIterator[list[Consumer]]:
    consumers: list[Consumer] = []
    yield consumers
    for consumer in consumers:
        await consumer.stop()


def consumer_of(
    sessions: async_sessionmaker[AsyncSession], amqp_names: AmqpNames, queues: QueueNames, **kw: float
) -> Consumer:
    return Consumer(settings_for("wallet", amqp_names), sessions, TABLES, queues=queues, **kw)  # type: ignore[arg-type]


async def declare(consumer: Consumer) -> None:
    """The queues exist (and are bound) before anything is published, with nobody consuming yet."""
    await consumer.start()
    await consumer.stop()


def registered(n: int, subject: str = "p") -> list[CloudEvent]:
    return [new_event(service="player", type="player.registered", subject=f"{subject}{i}", data={}) for i in range(n)]


async def publish_all(amqp_names: AmqpNames, events: Sequence[CloudEvent]) -> None:
    connection = await aio_pika.connect(amqp_names.url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(amqp_names.exchange)
        await asyncio.gather(
            *(
                exchange.publish(
                    signed_message(encode(e), message_id=str(e.id), delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                    routing_key=e.type,
                )
                for e in events
            )
        )


async def queue_depth(amqp_names: AmqpNames, name: str) -> int:
    connection = await aio_pika.connect(amqp_names.url)
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(name, passive=True)
        return queue.declaration_result.message_count or 0


def sample(name: str, labels: dict[str, str]) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_a_batch_is_one_transaction_its_duplicates_take_effect_once_and_all_are_acked(
    sessions: async_sessionmaker[AsyncSession], amqp_names: AmqpNames, started: list[Consumer]
) -> None:
    queues = amqp_names.service_queues("wallet")
    consumer = consumer_of(sessions, amqp_names, queues, batch_size=50, batch_window=0.05)
    calls: list[int] = []

    async def record_all(session: AsyncSession, events: Sequence[CloudEvent]) -> None:
        calls.append(len(events))
        for event in events:
            await record_effect(session, event)

    consumer.handler("player.registered")(handles_batches(record_all))
    await declare(consumer)
    events = registered(40)
    batches_before = sample("tablium_event_batch_size_count", {"service": "wallet"})
    # Every event twice (the relay's at-least-once), the duplicates in the same batch as their first.
    await publish_all(amqp_names, events + events)
    await consumer.start()
    started.append(consumer)

    async def all_taken() -> bool:
        return len(await effect_counts(sessions)) == 40 and await queue_depth(amqp_names, queues.main) == 0

    await wait_until(all_taken)
    await asyncio.sleep(0.2)
    assert await effect_counts(sessions) == {str(e.id): 1 for e in events}
    assert sum(calls) == 40
    assert max(calls) > 1  # the set-based handler saw several events at once
    assert sample("tablium_event_batch_size_count", {"service": "wallet"}) > batches_before
    await consumer.stop()
    started.remove(consumer)
    # Nothing was left unacked to come back on the next start.
    assert await queue_depth(amqp_names, queues.main) == 0


async def test_a_poison_message_in_a_batch_is_dead_lettered_alone_and_the_rest_commit(
    sessions: async_sessionmaker[AsyncSession], amqp_names: AmqpNames, started: list[Consumer]
) -> None:
    queues = amqp_names.service_queues("wallet")
    consumer = consumer_of(
        sessions, amqp_names, queues, batch_size=50, batch_window=0.05, max_attempts=2, retry_delay=0.05
    )
    events = registered(30)
    poison = events[7]

    @consumer.handler("player.registered")
    async def handle(session: AsyncSession, event: CloudEvent) -> None:
        await record_effect(session, event)
        if event.id == poison.id:
            raise RuntimeError("boom")

    await declare(consumer)
    fallbacks_before = sample("tablium_event_batch_fallbacks_total", {"service": "wallet"})
    await publish_all(amqp_names, events)
    await consumer.start()
    started.append(consumer)

    async def settled() -> bool:
        return len(await effect_counts(sessions)) == 29 and len(await list_dead_letters(amqp_names.url, queues)) == 1

    await wait_until(settled, within=30)
    (letter,) = await list_dead_letters(amqp_names.url, queues)
    assert (letter.message_id, letter.reason) == (str(poison.id), "failed")
    assert await effect_counts(sessions) == {str(e.id): 1 for e in events if e is not poison}
    assert sample("tablium_event_batch_fallbacks_total", {"service": "wallet"}) > fallbacks_before


async def test_two_consumers_on_one_queue_with_every_event_published_twice_take_effect_once(
    sessions: async_sessionmaker[AsyncSession], amqp_names: AmqpNames, started: list[Consumer]
) -> None:
    queues = amqp_names.service_queues("wallet")
    consumers = [consumer_of(sessions, amqp_names, queues, batch_size=20, prefetch=40) for _ in range(2)]
    for consumer in consumers:
        consumer.handler("player.registered")(record_effect)
    await declare(consumers[0])
    events = registered(200)
    await publish_all(amqp_names, events[:100] + events + events[100:])
    for consumer in consumers:
        await consumer.start()
        started.append(consumer)

    async def all_taken() -> bool:
        return len(await effect_counts(sessions)) == 200 and await queue_depth(amqp_names, queues.main) == 0

    await wait_until(all_taken, within=60)
    await asyncio.sleep(0.3)
    assert await effect_counts(sessions) == {str(e.id): 1 for e in events}


async def test_a_consumer_killed_between_commit_and_ack_leaves_each_event_once_to_the_next(
    sessions: async_sessionmaker[AsyncSession], amqp_names: AmqpNames, started: list[Consumer]
) -> None:
    prefix = amqp_names.queue_prefix()
    queues = amqp_names.service_queues("wallet", prefix)
    successor = consumer_of(sessions, amqp_names, queues)
    successor.handler("player.registered")(record_effect)
    await declare(successor)
    events = registered(150)
    await publish_all(amqp_names, events)

    doomed = await asyncio.create_subprocess_exec(
        sys.executable,
        str(Path(__file__).with_name("consumer_process.py")),
        sessions.kw["bind"].url.render_as_string(hide_password=False),
        amqp_names.exchange,
        prefix,
        stdout=asyncio.subprocess.PIPE,
    )
    assert doomed.stdout is not None
    async with asyncio.timeout(60):  # a fresh interpreter importing the kit on a busy machine is slow
        line = await doomed.stdout.readline()
    await doomed.wait()
    committed = int(line.split()[1])
    assert line.startswith(b"committed")
    assert committed > 1
    assert len(await effect_counts(sessions)) >= committed  # its batch committed, and was never acked

    await successor.start()
    started.append(successor)

    async def all_taken() -> bool:
        return len(await effect_counts(sessions)) == 150 and await queue_depth(amqp_names, queues.main) == 0

    await wait_until(all_taken, within=60)
    assert await effect_counts(sessions) == {str(e.id): 1 for e in events}


class _Acked:
    """A message that records its acks: (tag, multiple)."""

    def __init__(self, channel: object, tag: int, acks: list[tuple[int, bool]]) -> None:
        self.channel, self.delivery_tag, self.body, self._acks = channel, tag, b"{}", acks

    async def ack(self, multiple: bool = False) -> None:
        self._acks.append((self.delivery_tag, multiple))


async def test_a_batch_committed_before_an_older_one_waits_for_the_ack_that_covers_both() -> None:
    """One multiple ack per batch whatever order batches commit in; never one covering an open delivery;
    past ``hold`` waiting deliveries they are acked one by one."""
    channel, acks = object(), []
    deliveries = Deliveries(hold=4)
    arrived = [deliveries.arrived(_Acked(channel, tag, acks)) for tag in range(1, 10)]  # type: ignore[arg-type]
    older, newer, newest = arrived[0:3], arrived[3:6], arrived[6:9]
    await deliveries.ack(newer)
    assert acks == []  # 1..3 still open: a multiple ack up to 6 would settle them
    await deliveries.ack(older)
    assert acks == [(6, True)]  # one ack for both batches
    await deliveries.ack(newest[1:])
    assert acks == [(6, True)]  # 7 open
    deliveries.settled(newest[0])  # settled on its own (acked, retried or dead-lettered)
    await deliveries.flush(channel)
    assert acks == [(6, True), (9, True)]

    acks.clear()
    more = [deliveries.arrived(_Acked(channel, tag, acks)) for tag in range(10, 20)]  # type: ignore[arg-type]
    await deliveries.ack(more[1:5])
    assert acks == []  # 4 wait (hold)
    await deliveries.ack(more[5:6])
    assert sorted(acks) == [(11, False), (12, False), (13, False), (14, False), (15, False)]
    await deliveries.ack(more[:1])
    assert acks[-1] == (10, False)
