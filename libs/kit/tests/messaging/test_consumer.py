"""The consumer against the real Postgres and RabbitMQ: effect-once, retries, dead letters, tracing."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aio_pika
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tablium_kit.messaging import CloudEvent, Consumer, QueueNames, list_dead_letters
from tablium_kit.messaging.envelope import encode, new_event
from tablium_kit.messaging.testing import AmqpNames, signed_message

from .conftest import TABLES, effect_counts, make_relay, record_effect, register, settings_for, wait_until


async def publish(amqp_names: AmqpNames, body: bytes, *, message_id: str, to_queue: str | None = None) -> None:
    """Publish like a relay would (to the exchange), or straight into a queue."""
    connection = await aio_pika.connect(amqp_names.url)
    async with connection:
        channel = await connection.channel()
        persistent = aio_pika.DeliveryMode.PERSISTENT
        # To the exchange: signed by the event type's publisher, as its relay does; garbage straight into a
        # queue is not signed by anyone.
        message = (
            signed_message(body, message_id=message_id, delivery_mode=persistent)
            if to_queue is None
            else aio_pika.Message(body, message_id=message_id, delivery_mode=persistent)
        )
        if to_queue is None:
            exchange = await channel.get_exchange(amqp_names.exchange)
            await exchange.publish(message, routing_key="player.registered")
        else:
            await channel.default_exchange.publish(message, routing_key=to_queue)


def consumed(outcome: str) -> float:
    labels = {"service": "wallet", "type": "player.registered", "outcome": outcome}
    return REGISTRY.get_sample_value("tablium_events_consumed_total", labels) or 0.0


@pytest.fixture
async def started() -> AsyncIterator[list[Consumer]]:
    consumers: list[Consumer] = []
    yield consumers
    for consumer in consumers:
        await consumer.stop()


def wallet_consumer(
    sessions: async_sessionmaker[AsyncSession], amqp_names: AmqpNames, queues: QueueNames | None = None, **kw: float
) -> Consumer:
    return Consumer(
        settings_for("wallet", amqp_names),
        sessions,
        TABLES,
        queues=queues or amqp_names.service_queues("wallet"),
        **kw,  # type: ignore[arg-type]
    )


async def test_the_same_event_delivered_twice_takes_effect_once(
    sessions: async_sessionmaker[AsyncSession], amqp_names: AmqpNames, started: list[Consumer]
) -> None:
    consumer = wallet_consumer(sessions, amqp_names)
    consumer.handler("player.registered")(record_effect)
    await consumer.start()
    started.append(consumer)
    duplicates_before = consumed("duplicate")

    event = new_event(service="player", type="player.registered", subject="p1", data={"player_id": "p1"})
    for _ in range(2):
        await publish(amqp_names, encode(event), message_id=str(event.id))

    async def both_taken() -> bool:
        return consumed("duplicate") == duplicates_before + 1

    await wait_until(both_taken)
    assert await effect_counts(sessions) == {str(event.id): 1}


async def test_poison_and_malformed_messages_are_dead_lettered_and_replay_brings_one_back(
    sessions: async_sessionmaker[AsyncSession], amqp_names: AmqpNames, started: list[Consumer]
) -> None:
    prefix = amqp_names.queue_prefix()
    queues = amqp_names.service_queues("wallet", prefix)
    consumer = wallet_consumer(sessions, amqp_names, queues, max_attempts=3, retry_delay=0.05)
    calls: list[str] = []
    healthy = False

    @consumer.handler("player.registered")
    async def handle(session: AsyncSession, event: CloudEvent) -> None:
        calls.append(str(event.id))
        await record_effect(session, event)  # rolled back with the failure, like the inbox row
        if not healthy:
            raise RuntimeError("boom")

    await consumer.start()
    started.append(consumer)
    poison = new_event(service="player", type="player.registered", subject="p2", data={})
    await publish(amqp_names, encode(poison), message_id=str(poison.id))
    await publish(amqp_names, b"not json", message_id="garbage", to_queue=queues.main)
    await publish(amqp_names, b'{"specversion": "1.0"}', message_id="no-envelope", to_queue=queues.main)

    async def three_dead() -> bool:
        return len(await list_dead_letters(amqp_names.url, queues)) == 3

    await wait_until(three_dead)
    letters = {letter.message_id: letter for letter in await list_dead_letters(amqp_names.url, queues)}
    assert calls == [str(poison.id)] * 3
    assert (letters[str(poison.id)].reason, letters[str(poison.id)].attempts) == ("failed", 3)
    assert "boom" in letters[str(poison.id)].error
    assert (letters["garbage"].reason, letters["no-envelope"].reason) == ("malformed", "malformed")
    assert await effect_counts(sessions) == {}

    healthy = True  # the bug is fixed; an operator replays the poison message with the CLI
    cli = [sys.executable, "-m", "tablium_kit.messaging.deadletters"]
    common = ["--service", "wallet", "--queue-prefix", prefix, "--amqp-url", amqp_names.url]
    listed = await run(*cli, *common, "list")
    assert str(poison.id) in listed
    assert "garbage" in listed
    assert "replayed 1" in await run(*cli, *common, "replay", "--id", str(poison.id))

    async def handled() -> bool:
        return await effect_counts(sessions) == {str(poison.id): 1}

    await wait_until(handled)
    assert sorted(str(letter.message_id) for letter in await list_dead_letters(amqp_names.url, queues)) == [
        "garbage",
        "no-envelope",
    ]


async def run(*command: str) -> str:
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=Path(__file__).parent
    )
    stdout, stderr = await process.communicate()
    assert process.returncode == 0, stderr.decode()
    return stdout.decode()


@pytest.fixture(scope="module")
def spans() -> InMemorySpanExporter:
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter


async def test_trace_context_flows_from_outbox_add_to_the_consumer_span(
    sessions: async_sessionmaker[AsyncSession],
    amqp_names: AmqpNames,
    started: list[Consumer],
    spans: InMemorySpanExporter,
) -> None:
    consumer = wallet_consumer(sessions, amqp_names)
    seen: list[trace.SpanContext] = []

    @consumer.handler("player.registered")
    async def handle(session: AsyncSession, event: CloudEvent) -> None:
        seen.append(trace.get_current_span().get_span_context())

    await consumer.start()
    started.append(consumer)
    relay = make_relay(sessions, amqp_names)
    await relay.start()
    try:
        with trace.get_tracer("test").start_as_current_span("POST /api/v1/players") as request:
            await register(sessions, "traced")

        async def handled() -> bool:
            return bool(seen)

        await wait_until(handled)
    finally:
        await relay.stop()
    origin = request.get_span_context()
    assert seen[0].trace_id == origin.trace_id
    (process,) = [s for s in spans.get_finished_spans() if s.name == "player.registered process"]
    assert process.kind is trace.SpanKind.CONSUMER
    assert process.parent is not None
    assert process.parent.span_id == origin.span_id
    assert seen[0].span_id == process.context.span_id
