"""The outbox relay: a background task that publishes committed outbox rows to the events exchange.

Each batch is claimed with ``FOR UPDATE SKIP LOCKED`` (several instances share the work), published with
publisher confirms all in flight at once, and marked published in the same transaction once confirmed.
If the process dies after publishing but before the mark commits, the rows are published again:
delivery is at-least-once and consumers' inboxes make it effect-once.

A broker that is away (no confirm in time, connection lost) backs the whole relay off; nothing is
counted against the rows. A row the broker refuses for what it is (returned as unroutable although the
catalog names consumers, nacked), or one too big to send, counts ``attempts``; at ``park_after`` it is
parked: left unpublished, skipped, with a metric and an error log (ADR 0002 says how to release it).
Later events of the same subject wait behind a failing or parked one; other subjects go on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid
from collections.abc import Collection, Mapping, Sequence

import aio_pika
from aio_pika.abc import AbstractExchange, AbstractRobustConnection
from opentelemetry import trace
from sqlalchemy import Text, cast, exists, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tablium_kit.messaging.catalog import CATALOG, EventSpec
from tablium_kit.messaging.connection import connect
from tablium_kit.messaging.envelope import CONTENT_TYPE, MAX_MESSAGE_BYTES
from tablium_kit.messaging.metrics import (
    OUTBOX_BACKLOG,
    OUTBOX_PARKED,
    OUTBOX_PARKED_NOW,
    OUTBOX_PUBLISH_FAILURES,
    OUTBOX_PUBLISHED,
)
from tablium_kit.messaging.outbox import subscribe_commits, unsubscribe_commits
from tablium_kit.messaging.signing import EventSigner
from tablium_kit.messaging.tables import MessagingTables
from tablium_kit.settings import ServiceSettings

log = logging.getLogger(__name__)


class PublishFailedError(RuntimeError):
    """Some events of a batch were not confirmed by the broker; they stay in the outbox."""


class Relay:
    """Start it with the service (``await relay.start()``), stop it on shutdown (``await relay.stop()``)."""

    def __init__(
        self,
        settings: ServiceSettings,
        sessions: async_sessionmaker[AsyncSession],
        tables: MessagingTables,
        *,
        batch_size: int = 500,
        poll_interval: float = 1.0,
        publish_timeout: float = 10.0,
        min_backoff: float = 0.1,
        max_backoff: float = 10.0,
        park_after: int = 5,
        catalog: Mapping[str, EventSpec] = CATALOG,
    ) -> None:
        self._settings = settings
        self._sessions = sessions
        self._outbox = tables.outbox
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._publish_timeout = publish_timeout
        self._min_backoff = min_backoff
        self._max_backoff = max_backoff
        self._park_after = park_after
        self._catalog = catalog
        self._service = settings.service_name
        # Every message is signed with the service's own key: consumers refuse what it did not sign (signing.py).
        self._signer = EventSigner.from_settings(settings)
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._connection: AbstractRobustConnection | None = None
        self._exchange: AbstractExchange | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        """Begin relaying in the background. Never waits for the broker: the task connects and retries."""
        self._loop = asyncio.get_running_loop()
        self._stopping = False
        subscribe_commits(self.wake)
        self._task = asyncio.create_task(self._run(), name=f"outbox-relay-{self._service}")

    async def stop(self) -> None:
        unsubscribe_commits(self.wake)
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._connection is not None:
            await self._connection.close()
            self._connection = None
            self._exchange = None

    @property
    def broker_connected(self) -> bool:
        """Whether the relay holds a live broker connection (what ``/ready`` reports)."""
        return self._connection is not None and self._connection.connected.is_set()

    def wake(self) -> None:
        """Publish now rather than at the next poll (called after a commit that wrote events)."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._wake.set)

    async def _run(self) -> None:
        failures = 0
        while not self._stopping:
            # Cleared before claiming: a commit from now on wakes the next wait.
            self._wake.clear()
            try:
                claimed, _ = await self._publish_batch()
                if claimed == self._batch_size:
                    failures = 0
                    continue
                await self._refresh_backlog()
            except Exception:
                failures += 1
                delay = min(self._max_backoff, self._min_backoff * 2 ** (failures - 1))
                log.warning("outbox relay: batch failed, retrying in %.2fs", delay, exc_info=True)
                await asyncio.sleep(delay * random.uniform(0.8, 1.2))  # noqa: S311 - jitter
                continue
            failures = 0
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._poll_interval)

    async def publish_batch(self) -> int:
        """Claim, publish and mark one batch; returns how many events were published."""
        return (await self._publish_batch())[1]

    async def _publish_batch(self) -> tuple[int, int]:
        exchange = await self._get_exchange()
        outbox = self._outbox
        earlier = outbox.alias("earlier")
        async with self._sessions() as session, session.begin():
            rows = (
                await session.execute(
                    # The envelope as Postgres's JSON text: the body as is, no decode/encode round trip.
                    select(
                        outbox.c.id,
                        outbox.c.type,
                        outbox.c.subject,
                        cast(outbox.c.envelope, Text).label("envelope"),
                        outbox.c.headers,
                    )
                    .where(
                        outbox.c.published_at.is_(None),
                        outbox.c.attempts < self._park_after,
                        # Per-aggregate order: behind an earlier event of its subject that failed on its
                        # own (or is parked), an event waits; other subjects go on.
                        ~exists().where(
                            earlier.c.published_at.is_(None),
                            earlier.c.attempts > 0,
                            earlier.c.subject == outbox.c.subject,
                            earlier.c.seq < outbox.c.seq,
                        ),
                    )
                    .order_by(outbox.c.seq)
                    .limit(self._batch_size)
                    .with_for_update(of=outbox, skip_locked=True)
                )
            ).all()
            if not rows:
                return 0, 0
            # Known before publishing: too big for any broker. Parked at once, and its subject's later
            # events of this batch are held back with it.
            bodies = {row.id: row.envelope.encode() for row in rows}
            too_big = {row.id for row in rows if len(bodies[row.id]) > MAX_MESSAGE_BYTES}
            held_subjects = {row.subject for row in rows if row.id in too_big}
            sendable = [row for row in rows if row.subject not in held_subjects]
            tracer = trace.get_tracer(__name__)
            with tracer.start_as_current_span(
                f"{self._settings.events_exchange} publish",
                kind=trace.SpanKind.PRODUCER,
                attributes={
                    "messaging.system": "rabbitmq",
                    "messaging.destination.name": self._settings.events_exchange,
                    "messaging.batch.message_count": len(sendable),
                },
            ):
                # All confirms in flight at once; the timeout covers a broker that is down (a robust
                # channel would wait for it forever).
                tasks = [
                    asyncio.ensure_future(self._publish(exchange, row.id, row.type, bodies[row.id], row.headers))
                    for row in sendable
                ]
                if tasks:
                    try:
                        await asyncio.wait(tasks, timeout=self._publish_timeout)
                    finally:
                        for task in tasks:
                            task.cancel()
            published = [row.id for row, task in zip(sendable, tasks, strict=True) if _confirmed(task)]
            # Refused by the broker for what it is (returned: no queue bound although the catalog names
            # consumers; nacked), as opposed to the broker being away: counted against the row.
            refused = [(row, task) for row, task in zip(sendable, tasks, strict=True) if _refused(task)]
            unsent = [task for task in tasks if not _confirmed(task) and not _refused(task)]
            parked = await self._mark(session, published, [row.id for row, _ in refused], too_big)
        OUTBOX_PUBLISHED.labels(self._service).inc(len(published))
        for row, task in refused:
            OUTBOX_PUBLISH_FAILURES.labels(self._service, "refused").inc()
            log.warning("outbox relay: %s %s refused by the broker: %r", row.type, row.id, task.exception())
        for event_id in too_big:
            log.error("outbox relay: parked %s, over %d bytes", event_id, MAX_MESSAGE_BYTES)
        for event_id in parked:
            log.error("outbox relay: parked %s after %d refusals", event_id, self._park_after)
        if too_big:
            OUTBOX_PARKED.labels(self._service, "too_large").inc(len(too_big))
        if parked:
            OUTBOX_PARKED.labels(self._service, "refused").inc(len(parked))
        if unsent:
            OUTBOX_PUBLISH_FAILURES.labels(self._service, "unconfirmed").inc(len(unsent))
            cause = None if unsent[0].cancelled() else unsent[0].exception()
            raise PublishFailedError(f"{len(unsent)} of {len(rows)} events not confirmed") from cause
        return len(rows), len(published)

    async def _publish(
        self,
        exchange: AbstractExchange,
        event_id: uuid.UUID,
        event_type: str,
        body: bytes,
        headers: dict[str, str],
    ) -> None:
        message = aio_pika.Message(
            body=body,
            content_type=CONTENT_TYPE,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=str(event_id),
            type=event_type,
            headers={**headers, **self._signer.headers(body)},
        )
        # Mandatory when the catalog names consumers: no queue bound means the topology is missing,
        # and the broker returns the message (an error here) instead of dropping it.
        spec = self._catalog.get(event_type)
        await exchange.publish(message, routing_key=event_type, mandatory=bool(spec and spec.consumers))

    async def _mark(
        self,
        session: AsyncSession,
        published: Sequence[uuid.UUID],
        refused: Sequence[uuid.UUID],
        too_big: Collection[uuid.UUID],
    ) -> list[uuid.UUID]:
        """Record the batch's outcome; returns the refused events this refusal parked."""
        outbox = self._outbox
        if published:
            await session.execute(update(outbox).where(outbox.c.id.in_(published)).values(published_at=func.now()))
        if too_big:
            await session.execute(update(outbox).where(outbox.c.id.in_(too_big)).values(attempts=self._park_after))
        if not refused:
            return []
        counted = await session.execute(
            update(outbox)
            .where(outbox.c.id.in_(refused))
            .values(attempts=outbox.c.attempts + 1)
            .returning(outbox.c.id, outbox.c.attempts)
        )
        return [event_id for event_id, attempts in counted if attempts >= self._park_after]

    async def _get_exchange(self) -> AbstractExchange:
        if self._exchange is None:
            connection = await connect(self._settings.amqp_url, self._service, "relay")
            try:
                # A returned message raises PublishError from its publish, instead of counting as sent.
                channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
                exchange = await channel.declare_exchange(
                    self._settings.events_exchange, aio_pika.ExchangeType.TOPIC, durable=True
                )
            except BaseException:
                await connection.close()
                raise
            self._connection, self._exchange = connection, exchange
        return self._exchange

    async def _refresh_backlog(self) -> None:
        outbox = self._outbox
        async with self._sessions() as session:
            backlog, parked = (
                await session.execute(
                    select(func.count(), func.count().filter(outbox.c.attempts >= self._park_after)).where(
                        outbox.c.published_at.is_(None)
                    )
                )
            ).one()
        OUTBOX_BACKLOG.labels(self._service).set(backlog)
        OUTBOX_PARKED_NOW.labels(self._service).set(parked)


def _confirmed(task: asyncio.Future[None]) -> bool:
    return task.done() and not task.cancelled() and task.exception() is None


def _refused(task: asyncio.Future[None]) -> bool:
    """Returned (``PublishError``) or nacked (``DeliveryError``): the broker answered about this message."""
    return task.done() and not task.cancelled() and isinstance(task.exception(), aio_pika.exceptions.DeliveryError)
