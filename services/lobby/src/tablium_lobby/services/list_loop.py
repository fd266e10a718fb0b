"""What keeps waiting lists moving in the background: a list is passed over (overdue offers expired, free
seats offered, its Redis copy rewritten) when something asked for it, and every list in use every
``matching_interval_s`` (expiries, another instance's changes, a lost wake-up). Instances may both pass
over a list: each pass is under the list's lock and finds nothing left to do when another did it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tablium_lobby.services.lists import ListKey, keys_in_use

log = structlog.get_logger("tablium.lobby.matching")

Pass = Callable[[ListKey], Awaitable[object]]


class ListLoop:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], pass_over: Pass) -> None:
        self.sessions = sessions
        self.pass_over = pass_over
        self._wanted: set[ListKey] = set()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def wanted(self, key: ListKey) -> None:
        """Pass over ``key`` soon (the loop wakes at once)."""
        self._wanted.add(key)
        self._wake.set()

    async def pass_all(self, keys: Sequence[ListKey] | None = None) -> None:
        for key in keys if keys is not None else await keys_in_use(self.sessions):
            try:
                await self.pass_over(key)
            except Exception:  # one list's failure must not stop the others
                log.exception("waiting list pass failed", list_key=str(key))

    async def run(self, interval_s: float) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), interval_s)
            self._wake.clear()
            wanted, self._wanted = self._wanted, set()
            try:
                await self.pass_all(sorted(wanted, key=str) if wanted else None)
            except Exception:
                log.exception("waiting list pass failed")

    async def start(self, interval_s: float) -> None:
        await self.pass_all()  # the Redis copies rebuilt from Postgres, overdue offers passed on
        self._task = asyncio.create_task(self.run(interval_s), name="lobby-matching")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
