"""Event service: the cost of one hand report of a running tournament, on real Postgres.

    .venv/bin/python bench/event_bench.py [--sizes 1000,10000] [--hands 250] [--baseline-hands 30]

For each field size, a tournament is started in a throwaway database (the engine built and
snapshotted, no wallet needed: nobody busts, so no prize is owed) and hand reports go through
``Tournaments.hand_finished`` as the internal endpoint calls it: row lock, engine, instructions,
outbox, hand report row, commit. Three ways, measured in the same run:

- ``whole state`` (the baseline, how the service worked before the journal): every report loads the
  engine from the whole JSON state and writes the whole state back (a snapshot every fact, the
  in-process engine forgotten before each report);
- ``snapshot each``: the live engine kept in process, but the whole state still written every fact;
- ``journal``: the live engine kept, one journal row per fact, a snapshot every 200 facts (the default).

Mean, p50 and max ms per hand report; the journal's 250 reports include one periodic snapshot (its max).

Then the background clock over ``--clock-tournaments`` running tournaments (100 entrants each, a level
far from its end): ms per clock step and journal rows written per step, the service's ``_clock`` (an idle
tick is no fact) against the baseline of journaling every tick as a fact (how the clock worked before).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import msgspec
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from tablium_event.clients.wallet import Wallet
from tablium_event.db.models import Fact, TournamentRow
from tablium_event.domain.config import TournamentConfig
from tablium_event.domain.engine import Tournament
from tablium_event.domain.facts import apply
from tablium_event.services import engines
from tablium_event.services.tournaments import Tournaments
from tablium_event.settings import EventSettings

from tablium_kit import db, migrations

MIGRATIONS = Path(__file__).resolve().parents[1] / "services" / "event" / "src" / "tablium_event" / "db" / "migrations"
BASE_URL = os.environ.get("BENCH_EVENT_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/")


Sessions = async_sessionmaker[AsyncSession]


async def started(session_factory: Sessions, entrants: int) -> tuple[uuid.UUID, int]:
    """A running tournament of ``entrants`` (9-max), written as the service's start writes it;
    (its id, the size of its state in bytes)."""
    config = TournamentConfig(seats_per_table=9, seed=1, buy_in=1_000)
    engine = Tournament(config)
    for _ in range(entrants):
        engine.register(str(uuid.uuid4()))
    engine.start()
    async with session_factory() as session:
        row = TournamentRow(
            name=f"bench {entrants}",
            config=config.to_dict(),
            created_by="bench",
            status="running",
            version=1,
            state=engine.to_state(),
            state_version=1,
            started_at=datetime.now(UTC),
        )
        session.add(row)
        await session.commit()
        return row.id, len(msgspec.json.encode(row.state))


async def measure(
    session_factory: Sessions,
    settings: EventSettings,
    entrants: int,
    hands: int,
    *,
    snapshot_every: int,
    keep_engine: bool,
) -> tuple[list[float], int]:
    tournament_id, state_bytes = await started(session_factory, entrants)
    service = Tournaments(
        msgspec.structs.replace(settings, snapshot_every=snapshot_every), Wallet("http://127.0.0.1:9", "unused")
    )
    rng = random.Random(7)
    async with session_factory() as session:
        row = await session.get(TournamentRow, tournament_id)
        assert row is not None
        engine = await service.engine_of(session, row)
        assert engine is not None
        seated = {t: [e for e in table.seats if e is not None] for t, table in engine.tables.items()}
        stacks = {e.id: e.stack for e in engine.entries.values()}
    times: list[float] = []
    for hand in range(hands + 5):  # the first five warm the caches and connections
        if not keep_engine:
            service.engines.clear()
        table = rng.choice(list(seated))
        a, b = rng.sample(seated[table], 2)
        amount = rng.randint(0, stacks[a] // 2)  # chips move, nobody busts: no balancing, no prizes
        stacks[a] -= amount
        stacks[b] += amount
        began = time.perf_counter()
        async with session_factory() as session:
            await service.hand_finished(
                session,
                tournament_id,
                hand_id=f"h{hand}",
                table=table,
                stacks={e: stacks[e] for e in seated[table]},
                knockouts={},
            )
            await session.commit()
        if hand >= 5:
            times.append((time.perf_counter() - began) * 1000)
    await service.wallet.aclose()
    return times, state_bytes


async def every_tick_a_fact(service: Tournaments, session: AsyncSession) -> None:
    """The baseline: the clock step as it was, every running tournament's tick journaled as a fact."""
    ids = (await session.scalars(select(TournamentRow.id).where(TournamentRow.status == "running"))).all()
    for tournament_id in ids:
        row = await session.scalar(
            select(TournamentRow).where(TournamentRow.id == tournament_id).with_for_update(skip_locked=True)
        )
        if row is None:
            continue
        async with engines.fact(service.ctx, session, row) as engine:
            payload = {"now_ms": engines.now_ms(row, engine)}
            out = apply(engine, "tick", payload)
            await engines.record(service.ctx, session, row, engine, "tick", payload, out)


async def measure_clock(
    session_factory: Sessions, settings: EventSettings, tournaments: int, steps: int
) -> tuple[int, list[tuple[str, list[float], float]]]:
    """The tournaments running (``tournaments`` more, besides the hand reports' ones) and per way
    (ms per clock step, journal rows per step)."""
    for _ in range(tournaments):
        await started(session_factory, 100)
    async with session_factory() as session:
        running = await session.scalar(
            select(func.count()).select_from(TournamentRow).where(TournamentRow.status == "running")
        )
    service = Tournaments(settings, Wallet("http://127.0.0.1:9", "unused"))
    results = []
    for name, step in (("every tick", every_tick_a_fact), ("idle skipped", service.tick_clock)):
        async with session_factory() as session:
            facts_before = await session.scalar(select(func.count()).select_from(Fact))
        times = []
        for i in range(steps + 2):  # the first two load the engines
            began = time.perf_counter()
            async with session_factory() as session:
                await step(service, session) if step is every_tick_a_fact else await step(session)
                await session.commit()
            if i >= 2:
                times.append((time.perf_counter() - began) * 1000)
        async with session_factory() as session:
            facts = await session.scalar(select(func.count()).select_from(Fact))
        results.append((name, times, ((facts or 0) - (facts_before or 0)) / (steps + 2)))
    await service.wallet.aclose()
    return running or 0, results


async def run(
    sizes: list[int], hands: int, baseline_hands: int, clock_tournaments: int, clock_steps: int
) -> tuple[list[tuple[int, str, list[float], int]], tuple[int, list[tuple[str, list[float], float]]]]:
    url = f"{BASE_URL}tablium_event_bench_{os.getpid()}"
    await db.ensure_database(url)
    rows = []
    try:
        await asyncio.to_thread(migrations.upgrade, url, MIGRATIONS)
        settings = EventSettings.from_env("event", {"TABLIUM_EVENT_DATABASE_URL": url, "TABLIUM_ENVIRONMENT": "test"})
        engine = db.create_engine(url, pool_size=2)
        session_factory = db.session_factory(engine)
        for size in sizes:
            for name, every, keep, count in (
                ("whole state", 1, False, baseline_hands),
                ("snapshot each", 1, True, baseline_hands),
                ("journal", settings.snapshot_every, True, hands),
            ):
                times, state_bytes = await measure(
                    session_factory, settings, size, count, snapshot_every=every, keep_engine=keep
                )
                rows.append((size, name, times, state_bytes))
        clock = await measure_clock(session_factory, settings, clock_tournaments, clock_steps)
        await engine.dispose()
    finally:
        await db.drop_database(url)
    return rows, clock


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--hands", type=int, default=250)
    parser.add_argument("--baseline-hands", type=int, default=30)
    parser.add_argument("--clock-tournaments", type=int, default=50)
    parser.add_argument("--clock-steps", type=int, default=20)
    args = parser.parse_args()
    began = time.perf_counter()
    rows, (running, clock) = asyncio.run(
        run(
            [int(s) for s in args.sizes.split(",")],
            args.hands,
            args.baseline_hands,
            args.clock_tournaments,
            args.clock_steps,
        )
    )
    print("event service: one hand report of a running tournament (real Postgres, 9-max, nobody busts)")
    print(
        f"{'entrants':>9} {'state KB':>9} {'persistence':>14} {'hands':>6} {'mean ms':>8} {'p50 ms':>8} {'max ms':>8}"
    )
    for size, name, times, state_bytes in rows:
        print(
            f"{size:>9,} {state_bytes / 1024:>9,.0f} {name:>14} {len(times):>6} {statistics.fmean(times):>8.2f} "
            f"{statistics.median(times):>8.2f} {max(times):>8.2f}"
        )
    print(f"background clock: one step over {running} running tournaments (100 entrants, mid-level)")
    print(f"{'clock':>14} {'steps':>6} {'mean ms':>8} {'p50 ms':>8} {'max ms':>8} {'facts/step':>11}")
    for name, times, facts in clock:
        print(
            f"{name:>14} {len(times):>6} {statistics.fmean(times):>8.2f} {statistics.median(times):>8.2f} "
            f"{max(times):>8.2f} {facts:>11.1f}"
        )
    print(f"(whole run {time.perf_counter() - began:.0f} s)")


if __name__ == "__main__":
    main()
