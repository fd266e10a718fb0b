"""A background job run in passes: the shape every service's periodic work shares (expiry, payouts,
sweeps, reconcilers).

A pass that fails is logged and the job goes on after the interval: a database or a node that is away
must not end the loop, and the next pass retries. A pass that returns True has more to do at once (a
full batch) and the next one starts without waiting.

>>> async def expire_due() -> bool: ...
>>> job = Periodic("wallet-expiry", expire_due, interval_s=1.0)  # job.start() / await job.stop()
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog

log = structlog.get_logger("tablium.kit.periodic")


class Periodic:
    def __init__(
        self,
        name: str,
        run_pass: Callable[[], Awaitable[bool | None]],
        *,
        interval_s: float,
        first_pass_after_s: float = 0.0,
    ) -> None:
        self.name = name
        self._run_pass = run_pass
        self._interval_s = interval_s
        self._first_pass_after_s = first_pass_after_s
        self._task: asyncio.Task[None] | None = None
        self.passes = 0
        self.failures = 0
        # Why the last pass failed, None once one succeeds: what a readiness check reports.
        self.last_error: str | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name=self.name)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _loop(self) -> None:
        if self._first_pass_after_s:
            await asyncio.sleep(self._first_pass_after_s)
        while True:
            more = False
            try:
                more = bool(await self._run_pass())
                self.last_error = None
            except Exception as exc:  # the loop outlives any one pass; the next one retries
                self.failures += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("pass failed; trying again", job=self.name, error=self.last_error, exc_info=True)
            self.passes += 1
            # Even a job with more to do yields between passes.
            await asyncio.sleep(0 if more else self._interval_s)
