"""Outbox relay throughput against raw aio-pika confirmed publishing, same broker, same messages.

    .venv/bin/python bench/relay_bench.py [--events N] [--batch B] [--rounds R]

Both publish N CloudEvents (persistent, publisher confirms, ``mandatory`` with returns raised, B confirms
in flight at a time) to a throwaway topic exchange with one durable quorum queue bound, like a consuming
service's (the relay publishes ``player.registered`` mandatory because the catalog names a consumer).
The relay's rows are inserted before the clock starts; its time runs until every row is marked
published. Everything it creates (database, exchange, queue) is removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid

import aio_pika
import msgspec
from sqlalchemy import func, insert, select
from sqlalchemy.orm import DeclarativeBase

from tablium_kit.db import create_engine, drop_database, ensure_database, service_metadata, session_factory
from tablium_kit.messaging import CONTENT_TYPE, Relay, messaging_tables
from tablium_kit.messaging.envelope import CloudEvent, encode, new_event
from tablium_kit.settings import ServiceSettings

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432"


class Base(DeclarativeBase):
    metadata = service_metadata()


TABLES = messaging_tables(Base.metadata)


def make_events(n: int) -> list[CloudEvent]:
    return [
        new_event(service="player", type="player.registered", subject=f"p{i}", data={"player_id": f"p{i}", "n": i})
        for i in range(n)
    ]


async def raw_publish(exchange_name: str, events: list[CloudEvent], window: int) -> float:
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        exchange = await channel.get_exchange(exchange_name)
        start = time.perf_counter()
        for i in range(0, len(events), window):
            await asyncio.gather(
                *(
                    exchange.publish(
                        aio_pika.Message(
                            encode(event),
                            content_type=CONTENT_TYPE,
                            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                            message_id=str(event.id),
                            type=event.type,
                            headers={"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
                        ),
                        routing_key=event.type,
                        mandatory=True,
                    )
                    for event in events[i : i + window]
                )
            )
        return time.perf_counter() - start


async def relay_publish(database_url: str, exchange_name: str, events: list[CloudEvent], batch: int) -> float:
    engine = create_engine(database_url)
    sessions = session_factory(engine)
    outbox = TABLES.outbox
    try:
        async with sessions() as session, session.begin():
            rows = [
                {
                    "id": event.id,
                    "type": event.type,
                    "subject": event.subject,
                    "envelope": msgspec.to_builtins(event),
                    "headers": {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
                }
                for event in events
            ]
            await session.execute(insert(outbox), rows)
        settings = ServiceSettings(service_name="player", amqp_url=AMQP_URL, events_exchange=exchange_name)
        relay = Relay(settings, sessions, TABLES, batch_size=batch, poll_interval=0.05)
        start = time.perf_counter()
        await relay.start()
        try:
            while True:
                async with sessions() as session:
                    left = await session.scalar(select(func.count()).where(outbox.c.published_at.is_(None)))
                if not left:
                    break
                await asyncio.sleep(0.01)
            return time.perf_counter() - start
        finally:
            await relay.stop()
    finally:
        await engine.dispose()


async def main(n: int, batch: int, rounds: int) -> None:
    run = uuid.uuid4().hex[:8]
    database_url = f"{POSTGRES_URL}/bench_relay_{run}"
    exchange_name = f"tablium.events.bench-{run}"
    queue_name = f"bench-{run}.events"
    await ensure_database(database_url)
    engine = create_engine(database_url)
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    await engine.dispose()
    connection = await aio_pika.connect(AMQP_URL)
    try:
        channel = await connection.channel()
        exchange = await channel.declare_exchange(exchange_name, aio_pika.ExchangeType.TOPIC, durable=True)
        queue = await channel.declare_queue(queue_name, durable=True, arguments={"x-queue-type": "quorum"})
        await queue.bind(exchange, "player.registered")

        # Alternate the two, several rounds: the shared broker's disk latency drifts over seconds.
        raw_times: list[float] = []
        relay_times: list[float] = []
        for _ in range(rounds):
            raw_times.append(await raw_publish(exchange_name, make_events(n), batch))
            await queue.purge()
            relay_times.append(await relay_publish(database_url, exchange_name, make_events(n), batch))
            await asyncio.sleep(0.3)  # let the queue's message count settle
            delivered = (await channel.declare_queue(queue_name, passive=True)).declaration_result.message_count
            assert delivered == n, f"the relay delivered {delivered} of {n}"
            await queue.purge()
    finally:
        await channel.queue_delete(queue_name)
        await channel.exchange_delete(exchange_name)
        await connection.close()
        await drop_database(database_url)

    raw_seconds, relay_seconds = statistics.median(raw_times), statistics.median(relay_times)
    raw_rate, relay_rate = n / raw_seconds, n / relay_seconds
    print(f"{'method':<34} {'events':>8} {'seconds':>8} {'events/s':>10} {'ratio':>6}")
    print(f"{'raw aio-pika, confirms+mandatory':<34} {n:>8} {raw_seconds:>8.2f} {raw_rate:>10.0f} {1.0:>6.2f}")
    print(
        f"{'outbox relay (claim+publish+mark)':<34} {n:>8} {relay_seconds:>8.2f} {relay_rate:>10.0f} "
        f"{relay_rate / raw_rate:>6.2f}"
    )
    print(
        f"(median of {rounds} alternating rounds; {batch} confirms in flight; every relay round delivered all; "
        f"raw s: {' '.join(f'{t:.2f}' for t in raw_times)}; relay s: {' '.join(f'{t:.2f}' for t in relay_times)})"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    asyncio.run(main(args.events, args.batch, args.rounds))
