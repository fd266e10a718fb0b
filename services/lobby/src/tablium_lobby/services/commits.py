"""Group commit: the actions of several tables in one transaction (ADR 0008, "commits may be grouped").

A unit of work (one table's action) runs in the open group's session, one unit at a time; the group
commits once no unit already waiting is left (or it is full), and every unit's caller returns only after
that commit: DB first holds, and a group of N actions costs one BEGIN and one COMMIT instead of N of each.
A unit that raises :class:`Exception` other than the ones it declares harmless spoils the group (its
session may hold half a write): the group rolls back and every unit in it fails, nothing committed.

With groups off, a single statement (the hot path's action, ADR 0012) runs on one of a few connections
held open for it (:class:`Lanes`), straight through the driver: no pool checkout, no isolation level
set and reset, no SQLAlchemy compile or result processing (~420 µs of CPU a statement down to ~45 µs,
measured here); all busy, it waits for one. Outside a transaction, each statement is its own: committed when it returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

import structlog
from prometheus_client import Histogram
from sqlalchemy import Row, TextClause
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from tablium_lobby.services.stages import ActionClock

log = structlog.get_logger("tablium.lobby.commits")
GROUPED = Histogram(
    "tablium_lobby_lane_batch_statements",
    "Statements a lane sent in one round trip and one transaction (those queued while the lanes were busy)",
    buckets=(1, 2, 4, 8, 16, 32, 64),
)
GROUP_LIMIT = 64
LANES = 6  # connections held for one-statement transactions (taken from the engine's pool)
_PARAMETER = re.compile(r"(?<!:):(\w+)")


def positional(statement: TextClause) -> tuple[str, tuple[str, ...]]:
    """A ``text()`` statement's SQL with ``:name`` parameters as the driver's ``$n``, and the names in order."""
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        if match[1] not in names:
            names.append(match[1])
        return f"${names.index(match[1]) + 1}"

    return _PARAMETER.sub(number, statement.text), tuple(names)


class _Queued:
    """A statement waiting for a lane (:meth:`Lanes.fetch_grouped`)."""

    __slots__ = ("args", "clock", "key", "result", "sql", "taken")

    def __init__(self, sql: str, args: list[Any], key: Any, clock: ActionClock | None) -> None:
        self.sql, self.args, self.key, self.clock = sql, args, key, clock
        self.taken = False  # in a batch being sent
        self.result: asyncio.Future[Any] = asyncio.get_running_loop().create_future()  # its row (None: no row)


def _settle(entry: _Queued, *, row: Any = None, exc: BaseException | None = None) -> None:
    future = entry.result
    if future.done():
        return
    if exc is not None:
        # Cancelled or failed mid-batch: the outcome is unknown to each caller (as a statement of its own).
        future.set_exception(exc if isinstance(exc, Exception) else ConnectionError("the batch was interrupted"))
        future.exception()  # retrieved: a caller cancelled meanwhile never awaits it
    else:
        future.set_result(row)


class Lanes:
    """A few connections kept checked out for single statements, each run straight on the driver
    (asyncpg) in its own transaction. All busy, a statement waits for one: the pool's way (a checkout,
    the isolation level set and reset) cost several times the CPU, and at 500 tables most statements
    went that way with three lanes (bench/lobby_bench.py, ADR 0012)."""

    def __init__(self, engine: AsyncEngine, size: int = LANES) -> None:
        self._autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
        self.size = size
        # At most ``size`` statements in flight, so a statement let in finds a free lane or room to open one
        # (a lane that failed is dropped and its room reopened by the next statement).
        self._slots = asyncio.Semaphore(size)
        self._free: list[tuple[AsyncConnection, Any]] = []
        self._held: list[AsyncConnection] = []
        self._sql: dict[str, tuple[str, tuple[str, ...]]] = {}
        self._queued: list[_Queued] = []
        self._grouping = 0  # lanes in use by fetch_grouped (alone or a batch)
        self._batches: set[asyncio.Task[None]] = set()

    async def _open(self) -> tuple[AsyncConnection, Any]:
        connection = await self._autocommit.connect()
        try:
            driver = (await connection.get_raw_connection()).driver_connection
        except BaseException:
            with contextlib.suppress(Exception):
                await connection.close()
            raise
        self._held.append(connection)
        return connection, driver

    def _prepared(self, statement: TextClause) -> tuple[str, tuple[str, ...]]:
        return self._sql.get(statement.text) or self._sql.setdefault(statement.text, positional(statement))

    async def fetch_one(
        self, statement: TextClause, params: Mapping[str, Any], clock: ActionClock | None = None
    ) -> Any | None:
        """The statement's first row (None: no row), committed when this returns (``clock``: when a lane was
        free, and when the statement returned)."""
        sql, names = self._prepared(statement)
        args = [params[name] for name in names]
        async with self._slots:
            lane = self._free.pop() if self._free else await self._open()
            connection, driver = lane
            if clock is not None:
                clock.lane = time.time()
            try:
                row = await driver.fetchrow(sql, *args)
            except BaseException:
                # Its state is unknown (cancelled mid-statement, or the server went away): not reused.
                self._held.remove(connection)
                with contextlib.suppress(Exception):
                    await connection.invalidate()
                raise
            self._free.append(lane)
            if clock is not None:
                clock.committed = time.time()
            return row

    async def fetch_grouped(
        self, statement: TextClause, params: Mapping[str, Any], key: str, clock: ActionClock | None = None
    ) -> Any | None:
        """As :meth:`fetch_one`, but the statements that queue while the lanes are busy go together: one
        round trip and one transaction (one commit, one WAL flush) for all of them, each committed when this
        returns. ``key``: a parameter the statement returns as its first column, unique among those queued (a
        table's hand: one action in flight a table), by which each caller finds its row.

        At 500 tables one statement a lane made the lanes the queue: 165 ms p50 and over a second at p99
        waiting for one, against 9 ms a statement (ADR 0012, sixth pass). With a lane free and nobody
        waiting, a statement runs alone in the caller's task, as :meth:`fetch_one`; otherwise it queues, and
        each lane that frees takes everything queued (asyncpg's ``fetchmany``: one implicit transaction up
        to its Sync, so atomic: a statement that raises fails the others of its batch too, nothing of them
        committed, as in a group commit). No window, no timer: a batch is what queued during the last one.
        """
        if not self._queued and self._grouping < self.size and not self._slots.locked():
            self._grouping += 1
            try:
                return await self.fetch_one(statement, params, clock)
            finally:
                self._grouping -= 1
                self._drain()
        sql, names = self._prepared(statement)
        entry = _Queued(sql, [params[name] for name in names], params[key], clock)
        self._queued.append(entry)
        self._drain()
        try:
            return await asyncio.shield(entry.result)
        except asyncio.CancelledError:
            if not entry.taken:
                self._queued.remove(entry)  # never sent: nothing written, as a statement never run
            raise

    def _drain(self) -> None:
        """Lanes for what is queued, up to ``size`` in use for grouped statements."""
        while self._queued and self._grouping < self.size:
            self._grouping += 1
            task = asyncio.create_task(self._send_queued(), name="lobby-lane-batch")
            self._batches.add(task)
            task.add_done_callback(self._batches.discard)

    async def _send_queued(self) -> None:
        try:
            while self._queued:
                async with self._slots:
                    batch = self._take()
                    if batch:
                        await self._run(batch)
        except Exception:
            log.warning("a lane batch failed", exc_info=True)  # its callers have the error
        finally:
            self._grouping -= 1
            self._drain()

    def _take(self) -> list[_Queued]:
        """The oldest queued statements of one text, one a key, at most GROUP_LIMIT; marked as taken."""
        batch: list[_Queued] = []
        keys: set[Any] = set()
        kept: list[_Queued] = []
        for entry in self._queued:
            if (not batch or entry.sql == batch[0].sql) and entry.key not in keys and len(batch) < GROUP_LIMIT:
                entry.taken = True
                keys.add(entry.key)
                batch.append(entry)
            else:
                kept.append(entry)
        self._queued = kept
        return batch

    async def _run(self, batch: list[_Queued]) -> None:
        sql = batch[0].sql
        try:
            lane = self._free.pop() if self._free else await self._open()
        except BaseException as exc:
            for entry in batch:
                _settle(entry, exc=exc)
            raise
        connection, driver = lane
        began = time.time()
        try:
            if len(batch) == 1:
                rows = [await driver.fetchrow(sql, *batch[0].args)]
            else:
                rows = await driver.fetchmany(sql, [entry.args for entry in batch])
        except BaseException as exc:
            self._held.remove(connection)
            with contextlib.suppress(Exception):
                await connection.invalidate()
            for entry in batch:
                _settle(entry, exc=exc)
            raise
        self._free.append(lane)
        ended = time.time()
        GROUPED.observe(len(batch))
        found = {row[0]: row for row in rows if row is not None}
        for entry in batch:
            if entry.clock is not None:
                entry.clock.lane, entry.clock.committed = began, ended
            _settle(entry, row=found.get(entry.key))

    async def close(self) -> None:
        while self._free:
            connection, _ = self._free.pop()
            with contextlib.suppress(Exception):
                await connection.close()
        self._held.clear()


class _Group:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.units = 0
        self.spoiled: BaseException | None = None
        self.committed: asyncio.Future[None] = asyncio.get_running_loop().create_future()


class GroupCommit:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        harmless: tuple[type[Exception], ...] = (),
        *,
        enabled: bool = True,
    ) -> None:
        self.sessions = sessions
        self.harmless = harmless
        self.enabled = enabled
        self._use = asyncio.Lock()  # one unit at a time in a group's session; FIFO, the committer included
        self._open: _Group | None = None
        self._committers: set[asyncio.Task[None]] = set()
        bind: AsyncEngine = sessions.kw["bind"]
        # One statement on its own needs no BEGIN and no COMMIT: in autocommit it is its own transaction.
        self.lanes = Lanes(bind)

    async def execute_one(
        self,
        statement: TextClause,
        params: Mapping[str, Any],
        clock: ActionClock | None = None,
        *,
        key: str | None = None,
    ) -> Row[Any] | Any | None:
        """One statement's first row, committed when this returns: on a lane (``key``: with the others queued
        meanwhile, :meth:`Lanes.fetch_grouped`), or in the open group."""
        if not self.enabled:
            if key is not None:
                return await self.lanes.fetch_grouped(statement, params, key, clock)
            return await self.lanes.fetch_one(statement, params, clock)
        async with self.transaction() as session:
            if clock is not None:
                clock.lane = time.time()
            row = (await session.execute(statement, params)).first()
        if clock is not None:
            clock.committed = time.time()
        return row

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """The open group's session; on a clean exit, returns once the group is committed (or raises)."""
        if not self.enabled:
            async with self.sessions.begin() as session:
                yield session
            return
        async with self._use:
            group = self._open
            if group is None:
                group = self._open = _Group(self.sessions())
                await group.session.begin()
                task = asyncio.create_task(self._commit(group), name="lobby-group-commit")
                self._committers.add(task)
                task.add_done_callback(self._committers.discard)
            group.units += 1
            if group.units >= GROUP_LIMIT:
                self._open = None  # full: the next unit starts another group
            try:
                yield group.session
            except self.harmless:
                raise  # refused before writing anything: the group is unharmed
            except BaseException as exc:
                group.spoiled = exc
                if self._open is group:
                    self._open = None  # the units after this one start a group of their own
                raise
        await asyncio.shield(group.committed)

    async def _commit(self, group: _Group) -> None:
        # Queued behind the units already waiting for the session: they join this group first.
        async with self._use:
            if self._open is group:
                self._open = None
            try:
                if group.spoiled is not None:
                    raise RuntimeError("a unit of this group failed; nothing was committed") from group.spoiled
                await group.session.commit()
            except BaseException as exc:
                with contextlib.suppress(Exception):
                    await group.session.rollback()
                group.committed.set_exception(exc)
                group.committed.exception()  # retrieved: units that raised themselves never await it
            else:
                group.committed.set_result(None)
            finally:
                await group.session.close()

    async def stop(self) -> None:
        for task in list(self._committers):
            with contextlib.suppress(Exception):
                await task
        await self.lanes.close()
