"""Group commit: the actions of several tables in one transaction (ADR 0008, "commits may be grouped").

A unit of work (one table's action) runs in the open group's session, one unit at a time; the group
commits once no unit already waiting is left (or it is full), and every unit's caller returns only after
that commit: DB first holds, and a group of N actions costs one BEGIN and one COMMIT instead of N of each.
A unit that raises :class:`Exception` other than the ones it declares harmless spoils the group (its
session may hold half a write): the group rolls back and every unit in it fails, nothing committed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Any

from sqlalchemy import Executable, Row
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

GROUP_LIMIT = 64


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
        self._autocommit = bind.execution_options(isolation_level="AUTOCOMMIT")

    async def execute_one(self, statement: Executable, params: Mapping[str, Any]) -> Row[Any] | None:
        """One statement's first row, committed when this returns: alone (one round trip), or in the
        open group."""
        if not self.enabled:
            async with self._autocommit.connect() as connection:
                return (await connection.execute(statement, params)).first()
        async with self.transaction() as session:
            return (await session.execute(statement, params)).first()

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
