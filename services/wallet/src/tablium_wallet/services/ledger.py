"""The ledger's batcher: concurrent requests queue, and whatever queued while one batch ran becomes the
next batch (group commit). Each batch is one transaction of :func:`tablium_wallet.services.batch.execute`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import structlog
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tablium_kit.errors import ProblemError, database_unavailable
from tablium_wallet.services.batch import Batch
from tablium_wallet.services.transfers import Operation, Outcome, Result

log = structlog.get_logger("tablium.wallet.ledger")


class Ledger:
    """Groups concurrent operations into shared transactions.

    Up to ``concurrency`` batches are in flight: while one holds its accounts' locks, the next has
    already begun and queued for them, so the locks pass on at the commit without a round trip lost.
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        max_batch: int = 512,
        concurrency: int = 2,
        on_commit: Callable[[], None] | None = None,
    ) -> None:
        self._sessions = sessions
        self._max_batch = max_batch
        self._slots = asyncio.Semaphore(concurrency)
        self._on_commit = on_commit
        self._queue: list[tuple[Operation, asyncio.Future[Outcome]]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._running: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="wallet-ledger-batcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await asyncio.gather(*self._running, return_exceptions=True)

    async def submit(self, op: Operation) -> Result:
        """Apply one operation in the next batch; raise its error."""
        outcome = await self.submit_nowait(op)
        if isinstance(outcome, ProblemError):
            raise outcome
        return outcome

    async def submit_many(self, ops: Sequence[Operation]) -> list[Outcome]:
        """Apply independent operations (each succeeds or fails alone); one outcome per operation, in order.

        They join the queue together, so they share the next batch (or the next few, past ``max_batch``).
        An operation that could not be applied at all (the database unavailable) raises its error, once
        every operation is settled.
        """
        futures = [self.submit_nowait(op) for op in ops]
        if not futures:
            return []
        await asyncio.wait(futures)
        # Every failure retrieved (none is logged as never retrieved); the first is raised.
        for failure in [future.exception() for future in futures]:
            if failure is not None:
                raise failure
        return [future.result() for future in futures]

    def submit_nowait(self, op: Operation) -> asyncio.Future[Outcome]:
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._queue.append((op, future))
        self._wake.set()
        return future

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                await self._slots.acquire()
                batch = self._queue[: self._max_batch]
                del self._queue[: self._max_batch]
                task = asyncio.create_task(self._execute(batch))
                self._running.add(task)
                task.add_done_callback(self._running.discard)

    async def _execute(self, batch: list[tuple[Operation, asyncio.Future[Outcome]]]) -> None:
        try:
            await self._settle(batch)
        finally:
            self._slots.release()

    async def _settle(self, batch: list[tuple[Operation, asyncio.Future[Outcome]]]) -> None:
        ops = [op for op, _ in batch]
        try:
            outcomes = await self._transaction(ops)
        except Exception as error:
            if isinstance(error, DBAPIError) and not database_unavailable(error):
                # Rare: a race with another process on a new transfer id, or a deadlock with a writer that
                # does not lock in id order. Each operation then runs alone, so one cannot fail the others.
                log.warning("batch failed; retrying its operations one by one", error=str(error.orig), size=len(ops))
                await self._settle_alone(batch)
                return
            if database_unavailable(error):
                # Nothing was applied, and each operation alone would only meet the outage again: every
                # caller gets the error (the kit answers 503 and Retry-After) and retries with its own ids.
                log.warning("batch failed: the database is unavailable", error=repr(error), size=len(ops))
            else:
                log.exception("batch failed")
            for _, future in batch:
                if not future.done():
                    future.set_exception(error)
            return
        for (_, future), outcome in zip(batch, outcomes, strict=True):
            if not future.done():
                future.set_result(outcome)

    async def _settle_alone(self, batch: list[tuple[Operation, asyncio.Future[Outcome]]]) -> None:
        for op, future in batch:
            try:
                outcome = await self._alone(op)
            except Exception as error:
                if not future.done():
                    future.set_exception(error)
            else:
                if not future.done():
                    future.set_result(outcome)

    async def _transaction(self, ops: Sequence[Operation]) -> list[Outcome]:
        async with self._sessions() as session:
            async with session.begin():
                batch = Batch(session, datetime.now(UTC), events_in_batch=True)
                outcomes = await batch.run(ops)
            if batch.wrote_events and self._on_commit is not None:
                self._on_commit()
            return outcomes

    async def _alone(self, op: Operation) -> Outcome:
        """Up to three attempts. A failure is raised, never turned into a refusal: the database being
        unavailable at once, a third one at the end (a lasting deadlock or serialization failure is a 503
        for the kit too, anything else a 500). The operation's own refusals are outcomes, not failures."""
        for _ in range(2):
            try:
                (outcome,) = await self._transaction([op])
                return outcome
            except DBAPIError as error:
                if database_unavailable(error):
                    raise
        (outcome,) = await self._transaction([op])
        return outcome
