"""The lanes' batches (ADR 0012, sixth pass): the statements that queued while every lane was busy go in one
round trip and one transaction; each caller gets its own row (None where its condition did not hold), and
one statement that fails fails them all, nothing of them committed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from tablium_lobby.services.commits import Lanes

from tablium_kit import db

# A table's seq moves only from the one the caller read (the hot path's condition, db/actions.py).
MOVE = text("UPDATE probe SET seq = seq + (1 / :step) WHERE id = :id AND seq = :seq RETURNING id, seq")


@pytest.fixture
async def engine(make_database: Callable[[str], Awaitable[str]]) -> AsyncIterator[AsyncEngine]:
    engine = db.create_engine(await make_database("lanes"))
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE probe (id int PRIMARY KEY, seq int NOT NULL)"))
        await conn.execute(text("INSERT INTO probe SELECT n, 0 FROM generate_series(1, 4) n"))
    yield engine
    await engine.dispose()


async def seqs(engine: AsyncEngine) -> dict[int, int]:
    async with engine.connect() as conn:
        return {row[0]: row[1] for row in await conn.execute(text("SELECT id, seq FROM probe"))}


async def queued_behind_busy_lanes(lanes: Lanes, calls: list[dict[str, Any]]) -> list[Any]:
    """Every lane busy while ``calls`` queue; then the lanes free and the queued go together."""
    for _ in range(lanes.size):
        await lanes._slots.acquire()
    tasks = [asyncio.create_task(lanes.fetch_grouped(MOVE, params, "id")) for params in calls]
    await asyncio.sleep(0.05)
    assert not any(task.done() for task in tasks)
    for _ in range(lanes.size):
        lanes._slots.release()
    return await asyncio.gather(*tasks, return_exceptions=True)


async def test_statements_queued_together_commit_in_one_round_trip(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    batches: list[int] = []
    fetchmany = asyncpg.Connection.fetchmany

    async def counted(self: asyncpg.Connection, query: str, args: Any, **kwargs: Any) -> Any:
        args = list(args)
        batches.append(len(args))
        return await fetchmany(self, query, args, **kwargs)

    monkeypatch.setattr(asyncpg.Connection, "fetchmany", counted)
    lanes = Lanes(engine)
    try:
        results = await queued_behind_busy_lanes(
            lanes,
            [
                {"id": 1, "seq": 0, "step": 1},
                {"id": 2, "seq": 5, "step": 1},  # stale: its table is not at 5
                {"id": 3, "seq": 0, "step": 1},
            ],
        )
    finally:
        await lanes.close()
    assert batches == [3]
    assert [None if r is None else tuple(r) for r in results] == [(1, 1), None, (3, 1)]
    assert await seqs(engine) == {1: 1, 2: 0, 3: 1, 4: 0}


async def test_one_failing_statement_fails_its_whole_batch_and_commits_nothing(engine: AsyncEngine) -> None:
    lanes = Lanes(engine)
    try:
        results = await queued_behind_busy_lanes(
            lanes,
            [
                {"id": 1, "seq": 0, "step": 1},
                {"id": 2, "seq": 0, "step": 0},  # division by zero
                {"id": 3, "seq": 0, "step": 1},
            ],
        )
        assert all(isinstance(r, asyncpg.DivisionByZeroError) for r in results), results
        assert await seqs(engine) == {1: 0, 2: 0, 3: 0, 4: 0}
        # The lane that failed is dropped; the next statement opens another and commits alone.
        row = await lanes.fetch_grouped(MOVE, {"id": 4, "seq": 0, "step": 1}, "id")
        assert tuple(row) == (4, 1)
    finally:
        await lanes.close()
    assert await seqs(engine) == {1: 0, 2: 0, 3: 0, 4: 1}


async def test_a_caller_cancelled_before_its_batch_was_sent_writes_nothing(engine: AsyncEngine) -> None:
    lanes = Lanes(engine)
    try:
        for _ in range(lanes.size):
            await lanes._slots.acquire()
        task = asyncio.create_task(lanes.fetch_grouped(MOVE, {"id": 1, "seq": 0, "step": 1}, "id"))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        for _ in range(lanes.size):
            lanes._slots.release()
        row = await lanes.fetch_grouped(MOVE, {"id": 2, "seq": 0, "step": 1}, "id")
        assert tuple(row) == (2, 1)
    finally:
        await lanes.close()
    assert await seqs(engine) == {1: 0, 2: 1, 3: 0, 4: 0}
