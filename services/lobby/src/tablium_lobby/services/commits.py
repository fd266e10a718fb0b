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
from sqlalchemy import Row, TextClause
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from tablium_lobby.services.stages import ActionClock

log = structlog.get_logger("tablium.lobby.commits")
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

    async def fetch_one(
        self, statement: TextClause, params: Mapping[str, Any], clock: ActionClock | None = None
    ) -> Any | None:
        """The statement's first row (None: no row), committed when this returns (``clock``: when a lane was
        free, and when the statement returned)."""
        sql, names = self._sql.get(statement.text) or self._sql.setdefault(statement.text, positional(statement))
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
        self, statement: TextClause, params: Mapping[str, Any], clock: ActionClock | None = None
    ) -> Row[Any] | Any | None:
        """One statement's first row, committed when this returns: alone (one round trip, on a lane), or
        in the open group."""
        if not self.enabled:
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
