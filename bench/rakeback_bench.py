"""Hand events accrued per second: from RabbitMQ into Postgres through the kit's consumer (inbox included),
against the same accruals made without the consumer (the handler's transactions, run directly).

    .venv/bin/python bench/rakeback_bench.py [--hands N] [--players P] [--tables T] [--batch-size B] [--in-flight F]

Every hand is at a club table, P players each paying rake, each a club member with an agent; the hands go
round T tables, each with its own P players (T x P members). Each hand stores P rakes, adds P x 4 parts to
the accrual totals (per period, receiver and paying player: with T = 1 a batch adds to 4 x P totals, with
T tables up to 4 x P x T) and one ``rakeback.accrued`` outbox row. Rows, in one run:

- baseline: the batch handler's transactions run directly, B hands each, F at a time (no broker, no inbox);
- the consumer as services run it: batches of up to B deliveries, F in flight (one transaction and one
  multiple ack per batch);
- the consumer one message per transaction (``batch_size=1``, 32 at a time: what it did before batching),
  on at most 500 hands.

Each consumer run starts with its events queued and ends when the last rake is accrued. Target (issue 14):
2,000 hand events/s, so one instance keeps up with 1,000 busy tables. Bounded (``--timeout``, default
600 s); everything it creates (databases, exchange, queues) is removed.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aio_pika
import anyio
import msgspec
from sqlalchemy import text
from tablium_rakeback.app import MIGRATIONS
from tablium_rakeback.db.models import MESSAGING
from tablium_rakeback.events.handlers import HANDLERS, on_hands_completed
from tablium_rakeback.settings import RakebackSettings

from tablium_kit import migrations
from tablium_kit.collector import tune_gc
from tablium_kit.db import create_engine, drop_database, ensure_database, session_factory
from tablium_kit.messaging import CloudEvent, Consumer
from tablium_kit.messaging.catalog import source_of
from tablium_kit.messaging.testing import signed_message
from tablium_kit.messaging.topology import QueueNames

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432"
NOW = datetime.now(UTC)


def _event(type_: str, data: dict[str, Any], subject: str = "x") -> CloudEvent:
    return CloudEvent(id=uuid.uuid4(), source=source_of(type_), type=type_, time=NOW, subject=subject, data=data)


def club_facts(club: uuid.UUID, agent: uuid.UUID, players: list[uuid.UUID]) -> list[CloudEvent]:
    """The agent, every player as its recruit, and the deal."""
    facts = [_event("club.member_joined", {"club_id": str(club), "player_id": str(agent), "role": "agent", "seq": 1})]
    for n, player in enumerate(players):
        data = {"club_id": str(club), "player_id": str(player), "role": "member", "agent_id": str(agent), "seq": n + 2}
        facts.append(_event("club.member_joined", data))
    agents = [{"agent_id": str(agent), "parent_agent_id": None, "bps": 2000, "player_bps": 1000}]
    deal = {
        "club_id": str(club),
        "version": 1,
        "effective_from": (NOW - timedelta(days=1)).isoformat(),
        "club_bps": 3000,
        "player_bps": 500,
        "agents": agents,
        "seq": len(players) + 2,
    }
    return [*facts, _event("club.deal_changed", deal)]


def hands(club: uuid.UUID, players: list[uuid.UUID], n: int, per_table: int) -> list[CloudEvent]:
    """``n`` hands going round the tables, each table seating its own ``per_table`` of ``players``."""
    tables = [
        (str(uuid.uuid4()), [{"seat": i + 1, "player_id": str(p), "rake": str(1000 + i)} for i, p in enumerate(seated)])
        for seated in (players[k : k + per_table] for k in range(0, len(players), per_table))
    ]
    made = []
    for number in range(n):
        table, seats = tables[number % len(tables)]
        data = {
            "table_id": table,
            "hand_id": str(uuid.uuid4()),
            "asset": "USDT",
            "club_id": str(club),
            "players": seats,
        }
        made.append(_event("lobby.hand_completed", data, subject=table))
    return made


class CpuMeter:
    """CPU seconds spent over a phase, whatever the machine's load: this process (its consumer processes
    report their own, from the phase's start: their start-up is not the phase's) and the Postgres backends
    serving the phase's database."""

    def __init__(self, sessions: Any, database: str) -> None:
        self._sessions, self._database = sessions, database
        self._process = 0.0
        self._backends: dict[int, float] = {}
        # The last CPU seen of each backend: the consumer processes' backends are gone by the phase's end.
        self._seen: dict[int, float] = {}

    async def _backend_cpu(self) -> dict[int, float]:
        async with self._sessions() as session:
            pids = (
                await session.scalars(
                    text("SELECT pid FROM pg_stat_activity WHERE datname = :d"), {"d": self._database}
                )
            ).all()
        return self._read(list(pids))

    @staticmethod
    def _read(pids: list[int]) -> dict[int, float]:
        ticks = os.sysconf("SC_CLK_TCK")
        found = {}
        for pid in pids:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # gone, or not readable here: not counted
            found[pid] = (int(fields[11]) + int(fields[12])) / ticks  # utime + stime
        return found

    async def start(self) -> None:
        self._backends = await self._backend_cpu()
        self._seen = dict(self._backends)
        self._process = time.process_time()

    async def sample(self) -> None:
        """Note the backends' CPU now (call during the phase: backends that end before it do count)."""
        self._seen.update(await self._backend_cpu())

    async def stop(self, others: float = 0.0) -> tuple[float, float]:
        """(this process's CPU seconds and ``others``, the consumer processes', the backends') since :meth:`start`."""
        process = time.process_time() - self._process + others
        await self.sample()
        return process, sum(cpu - self._backends.get(pid, 0.0) for pid, cpu in self._seen.items())


Phase = tuple[float, float, float]  # seconds, process CPU seconds, Postgres CPU seconds


async def _database(name: str) -> str:
    url = f"{POSTGRES_URL}/{name}"
    await ensure_database(url)
    await anyio.to_thread.run_sync(migrations.upgrade, url, MIGRATIONS)
    return url


async def _handle(sessions: Any, fact: CloudEvent) -> None:
    async with sessions() as session, session.begin():
        await HANDLERS[fact.type](session, fact)


async def baseline(url: str, facts: list[CloudEvent], events: list[CloudEvent], batch: int, in_flight: int) -> Phase:
    engine = create_engine(url, pool_size=in_flight)
    sessions = session_factory(engine)
    try:
        for fact in facts:
            await _handle(sessions, fact)
        batches = [events[i : i + batch] for i in range(0, len(events), batch)]

        async def worker() -> None:
            while batches:
                async with sessions() as session, session.begin():
                    await on_hands_completed(session, batches.pop(0))

        meter = CpuMeter(sessions, url.rsplit("/", 1)[1])
        await meter.start()
        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(in_flight)))
        elapsed = time.perf_counter() - start
        return (elapsed, *await meter.stop())
    finally:
        await engine.dispose()


def _consumer_process(
    url: str,
    exchange_name: str,
    names: QueueNames,
    batch: int,
    in_flight: int,
    events: tuple[Any, Any, Any],
    gc_young_threshold: int,
) -> None:
    """Another consumer process on the same queue (what ``TABLIUM_RAKEBACK_WORKERS`` runs: a consumer per
    worker process): imported and ready, it starts at ``go`` (with the timed one) and stops at ``stop``,
    leaving the CPU seconds it spent in between in ``spent``."""
    ready, go, stop, spent = events

    async def run() -> None:
        engine = create_engine(url, pool_size=in_flight)
        settings = RakebackSettings(
            service_name="rakeback", database_url=url, amqp_url=AMQP_URL, events_exchange=exchange_name
        )
        consumer = Consumer(
            settings, session_factory(engine), MESSAGING, queues=names, batch_size=batch, batches_in_flight=in_flight
        )
        for event_type, handler in HANDLERS.items():
            consumer.handler(event_type)(handler)
        tune_gc(gc_young_threshold)  # as the service's start-up does
        ready.set()
        await asyncio.to_thread(go.wait)
        started = time.process_time()
        await consumer.start()
        try:
            await asyncio.to_thread(stop.wait)
        finally:
            await consumer.stop()
            spent.value = time.process_time() - started
            await engine.dispose()

    asyncio.run(run())


async def through_consumer(
    url: str,
    exchange_name: str,
    names: QueueNames,
    facts: list[CloudEvent],
    events: list[CloudEvent],
    batch: int,
    in_flight: int,
    processes: int = 1,
    gc_young_threshold: int = 0,
) -> Phase:
    # One message per transaction ran 32 deliveries at a time (the kit's old prefetch).
    in_flight = 32 if batch == 1 else in_flight
    engine = create_engine(url, pool_size=in_flight)
    sessions = session_factory(engine)
    settings = RakebackSettings(
        service_name="rakeback", database_url=url, amqp_url=AMQP_URL, events_exchange=exchange_name
    )
    consumer = Consumer(
        settings,
        sessions,
        MESSAGING,
        queues=names,
        batch_size=batch,
        batches_in_flight=in_flight,
    )
    for event_type, handler in HANDLERS.items():
        consumer.handler(event_type)(handler)
    try:
        for fact in facts:
            await _handle(sessions, fact)
        connection = await aio_pika.connect(AMQP_URL)
        async with connection:
            channel = await connection.channel(publisher_confirms=True)
            exchange = await channel.declare_exchange(exchange_name, aio_pika.ExchangeType.TOPIC, durable=True)
            await consumer.start()  # declares and binds the queues
            await consumer.stop()
            for i in range(0, len(events), 500):
                await asyncio.gather(
                    *(
                        exchange.publish(
                            signed_message(msgspec.json.encode(e), message_id=str(e.id)), routing_key=e.type
                        )
                        for e in events[i : i + 500]
                    )
                )
        # The inbox row commits with the hand's accruals; counting it is cheaper than counting rakes.
        expected = len(events)
        context = multiprocessing.get_context("spawn")
        go, stop = context.Event(), context.Event()
        readiness = [context.Event() for _ in range(processes - 1)]
        spent = [context.Value("d", 0.0) for _ in readiness]
        others = [
            context.Process(
                target=_consumer_process,
                args=(url, exchange_name, names, batch, in_flight, (ready, go, stop, cpu), gc_young_threshold),
            )
            for ready, cpu in zip(readiness, spent, strict=True)
        ]
        for other in others:
            other.start()
        for ready in readiness:
            await asyncio.to_thread(ready.wait, 60)
        meter = CpuMeter(sessions, url.rsplit("/", 1)[1])
        await meter.start()
        start = time.perf_counter()
        go.set()
        await consumer.start()
        while True:
            async with sessions() as session:
                done = await session.scalar(text("SELECT count(*) FROM inbox"))
            if done == expected:
                elapsed = time.perf_counter() - start
                break
            await meter.sample()
            await asyncio.sleep(0.1)
        await meter.sample()  # before the other consumer processes close their connections
        stop.set()
        for other in others:
            await asyncio.to_thread(other.join, 30)
        cpu = await meter.stop(sum(each.value for each in spent))
        async with sessions() as session:
            accrued = await session.scalar(text("SELECT count(*) FROM rakes WHERE status = 'accrued'"))
        if accrued != len(events) * len(events[0].data["players"]):
            raise AssertionError(f"{accrued} rakes accrued, not every hand's")
        return (elapsed, *cpu)
    finally:
        await consumer.stop()
        await engine.dispose()


async def main(
    n: int, players: int, tables: int, batch: int, in_flight: int, processes: int, gc_young_threshold: int
) -> list[tuple[str, int, Phase]]:
    run = uuid.uuid4().hex[:8]
    exchange_name = f"tablium.events.bench-{run}"
    names = [QueueNames.for_service("rakeback", f"bench-{run}-{kind}.") for kind in ("batched", "single")]
    urls = [await _database(f"bench_rakeback_{run}_{kind}") for kind in ("base", "batched", "single")]
    club, agent, members = uuid.uuid4(), uuid.uuid4(), [uuid.uuid4() for _ in range(players * tables)]
    single = min(n, 500)
    try:
        base_s = await baseline(
            urls[0], club_facts(club, agent, members), hands(club, members, n, players), batch, in_flight
        )
        batched_s = await through_consumer(
            urls[1],
            exchange_name,
            names[0],
            club_facts(club, agent, members),
            hands(club, members, n, players),
            batch,
            in_flight,
            processes,
            gc_young_threshold,
        )
        single_s = await through_consumer(
            urls[2],
            exchange_name,
            names[1],
            club_facts(club, agent, members),
            hands(club, members, single, players),
            1,
            1,
        )
    finally:
        connection = await aio_pika.connect(AMQP_URL)
        async with connection:
            channel = await connection.channel()
            for queue in (q for each in names for q in (each.main, each.retry, each.dlq)):
                await channel.queue_delete(queue)
            await channel.exchange_delete(exchange_name)
        for url in urls:
            await drop_database(url)
    return [
        (f"handler transactions, no consumer ({batch}/tx)", n, base_s),
        (f"RabbitMQ -> {processes} consumer(s) -> Postgres ({batch}/tx)", n, batched_s),
        ("RabbitMQ -> consumer -> Postgres (1/tx)", single, single_s),
    ]


def report(rows: list[tuple[str, int, Phase]], players: int, tables: int, in_flight: int) -> None:
    base = rows[0][1] / rows[0][2][0]
    print(
        f"{'method':<50} {'hands':>6} {'seconds':>8} {'hands/s':>8} {'ratio':>6} "
        f"{'py ms/hand':>10} {'pg ms/hand':>10} {'hands/cpu-s':>11}"
    )
    for name, count, (seconds, process, postgres) in rows:
        per_cpu = count / (process + postgres) if process + postgres else 0.0
        print(
            f"{name:<50} {count:>6} {seconds:>8.2f} {count / seconds:>8.0f} {count / seconds / base:>6.2f} "
            f"{1000 * process / count:>10.3f} {1000 * postgres / count:>10.3f} {per_cpu:>11.0f}"
        )
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"({players} raked players a hand at {tables} table(s), {in_flight} transactions at a time; "
        f"load average {load}; target 2,000/s. CPU: this process and its consumer processes (py), the Postgres "
        "backends of the run's database (pg); hands/cpu-s: hands per CPU second of both, what 2 idle cores "
        "would double)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hands", type=int, default=5000)
    parser.add_argument("--players", type=int, default=6)
    parser.add_argument("--consumers", type=int, default=1, help="consumer processes on the queue")
    parser.add_argument("--tables", type=int, default=1, help="tables the hands go round, each its own players")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--in-flight", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument(
        "--gc-young-threshold",
        type=int,
        default=RakebackSettings(service_name="rakeback").gc_young_threshold,
        help="the service's garbage collector tuning (0: Python's defaults)",
    )
    args = parser.parse_args()
    # Every process of the bench collects as the service's do (its consumer processes too).
    tune_gc(args.gc_young_threshold)

    async def bounded() -> list[tuple[str, int, float]]:
        async with asyncio.timeout(args.timeout):
            return await main(
                args.hands,
                args.players,
                args.tables,
                args.batch_size,
                args.in_flight,
                args.consumers,
                args.gc_young_threshold,
            )

    report(asyncio.run(bounded()), args.players, args.tables, args.in_flight)
