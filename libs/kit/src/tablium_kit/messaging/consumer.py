"""Consuming events: a service's durable quorum queue, handlers run effect-once in a DB transaction.

For each message: decode the envelope (malformed → dead letters), check that its ``source`` is the
type's one publisher in the catalog and that the publisher's key signed its body (``signing.py``; else
forged → dead letters), then in ONE transaction insert the
inbox row ``(consumer, event id)`` and run the handler. A duplicate finds the inbox row already there and
is skipped. The message is acked only after that transaction committed.

Two kinds of failure, two treatments:

- infrastructure (database unreachable or restarting, connection reset, serialization failure,
  deadlock, timeout: :func:`tablium_kit.errors.transient_failure`; another service unreachable or
  answering 502/503/504 through the kit's internal client) says nothing about the message. The
  handler is run again in place, without limit, backing off up to ``max_infra_backoff``; the message is
  held (unacked) meanwhile, so nothing reaches the dead letters because the database restarted.
- anything else the handler raises is the message's own problem (poison): retried with exponential
  backoff through the retry queue; after ``max_attempts`` the message is dead-lettered
  (see :mod:`tablium_kit.messaging.topology`).

Batches (ADR 0002): deliveries are taken up to ``batch_size`` at a time (what is waiting, or what
arrives within ``batch_window``) and handled in ONE transaction: the batch's inbox rows in one insert
(a duplicate inserts nothing and its handler is not run), then each new event's handler in delivery
order (a :func:`~tablium_kit.messaging.batches.handles_batches` handler once with all its type's events),
one commit, then one multiple ack. If a handler raises, the transaction is rolled back and the batch is
handled again message by message, as above, so a poison message is retried and dead-lettered alone.
A batch of one is handled that way from the start.

Concurrency contract: up to ``batches_in_flight`` batches run at once, so handlers see events out of
order. A handler registered with ``ordered=True`` (or marked with :func:`ordered_by_subject`) sees the
events of one ``subject`` one after another in delivery order; other subjects still run concurrently.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

import aio_pika
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection
from aiormq.abc import DeliveredMessage
from opentelemetry import trace
from opentelemetry.context import Context
from sqlalchemy import String, Uuid, bindparam, func, select
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tablium_kit.messaging.batches import (
    Deliveries,
    Delivery,
    SubjectTurns,
    batch_handler_of,
    take_over_deliveries,
)
from tablium_kit.messaging.batches import Handler as Handler  # where services import it from
from tablium_kit.messaging.connection import connect
from tablium_kit.messaging.envelope import CloudEvent
from tablium_kit.messaging.failures import through_outages
from tablium_kit.messaging.metrics import (
    BATCH_FALLBACKS,
    BATCH_SIZE,
    CONSUMER_LAG,
    CONSUMER_RESTARTS,
    EVENTS_CONSUMED,
    HANDLER_FAILURES,
    count_batch,
)
from tablium_kit.messaging.redelivery import Redelivery, attempts_of
from tablium_kit.messaging.signing import EventVerifier
from tablium_kit.messaging.tables import MessagingTables
from tablium_kit.messaging.topology import (
    QueueNames,
    declare_queues,
)
from tablium_kit.settings import ServiceSettings

log = logging.getLogger(__name__)

H = TypeVar("H", bound=Handler)
T = TypeVar("T")
State = Literal["stopped", "starting", "running", "failed"]

_ORDERED = "__tablium_ordered_by_subject__"


def ordered_by_subject(handler: H) -> H:
    """Mark a handler to see one subject's events one at a time, in delivery order (``event_handlers``)."""
    setattr(handler, _ORDERED, True)
    return handler


class Consumer:
    """Register handlers with ``@consumer.handler("wallet.transfer_posted")``, then ``await consumer.start()``.

    :attr:`state` and :attr:`reason` say where it is (what ``/ready`` reports). ``prefetch`` bounds the
    deliveries held (waiting and in flight); by default a batch more than ``batches_in_flight`` hold, so
    the next batch is waiting when one ends.
    """

    def __init__(
        self,
        settings: ServiceSettings,
        sessions: async_sessionmaker[AsyncSession],
        tables: MessagingTables,
        *,
        queues: QueueNames | None = None,
        prefetch: int | None = None,
        batch_size: int = 100,
        batch_window: float = 0.005,
        batches_in_flight: int = 2,
        max_attempts: int = 5,
        retry_delay: float = 1.0,
        max_retry_delay: float = 300.0,
        max_infra_backoff: float = 5.0,
    ) -> None:
        self._settings = settings
        self._service = settings.service_name
        # Who signed each message: only its type's publisher may have (signing.py).
        self._verifier = EventVerifier.from_settings(settings)
        self._sessions = sessions
        self._inbox = tables.inbox
        # A batch's inbox rows as one array bound to one statement, in key order: SQLAlchemy's multi-row
        # insert built and processed a parameter set per row (a busy consumer's largest cost outside its
        # handler), where Postgres unnests one array.
        unnested = select(bindparam("consumer", type_=String), func.unnest(bindparam("ids", type_=ARRAY(Uuid))))
        self._inbox_batch = (
            insert(tables.inbox)
            .from_select(["consumer", "event_id"], unnested)
            .on_conflict_do_nothing()
            .returning(tables.inbox.c.event_id)
        )
        self.queues = queues or QueueNames.for_service(settings.service_name)
        self._batch_size = max(1, batch_size)
        self._batch_window = batch_window
        self._batches_in_flight = max(1, batches_in_flight)
        self._prefetch = prefetch or self._batch_size * (self._batches_in_flight + 1)
        self._max_attempts = max_attempts
        self._retry_delay = retry_delay
        self._max_retry_delay = max_retry_delay
        self._max_infra_backoff = max_infra_backoff
        self._handlers: dict[str, Handler] = {}
        self._ordered: set[str] = set()
        # Per subject, the turn of the last batch holding an event of it for an ordered handler.
        self._turns = SubjectTurns()
        # Committed batches wait for their ack behind a slower older one up to what the other slots hold.
        self._deliveries = Deliveries(hold=self._batch_size * max(1, self._batches_in_flight - 1))
        self._waiting: list[Delivery] = []
        self._arrived = asyncio.Event()
        self._batcher: asyncio.Task[None] | None = None
        self._in_flight: set[asyncio.Task[None]] = set()
        self._connection: AbstractRobustConnection | None = None
        self._redelivery: Redelivery | None = None
        # The consuming channel and consumer tag, once started.
        self._consuming: tuple[Any, str] | None = None
        self._stopping = False
        self.state: State = "stopped"
        self.reason: str | None = None

    def handler(self, event_type: str, *, ordered: bool = False) -> Callable[[H], H]:
        """Register the handler of ``event_type``; ``ordered``: one subject's events one at a time."""

        def register(handler: H) -> H:
            if event_type in self._handlers:
                raise ValueError(f"{event_type} already has a handler")
            self._handlers[event_type] = handler
            if ordered or getattr(handler, _ORDERED, False):
                self._ordered.add(event_type)
            return handler

        return register

    async def start(self) -> None:
        """Declare the queues, bind the handled event types and start consuming (one try; raises)."""
        self.state, self.reason, self._stopping = "starting", None, False
        try:
            connection = await connect(self._settings.amqp_url, self._service, "consumer")
        except Exception as exc:
            self._failed(exc)
            raise
        self._batcher = asyncio.create_task(self._batches(), name=f"{self._service}-consumer-batches")
        try:
            # Retries and dead letters are published on their own confirmed channel: the original is
            # acked only once its copy is safely in the broker. Returned (its queue is gone) raises, so
            # the original goes back to the queue rather than being acked for a copy that went nowhere.
            publisher = await connection.channel(publisher_confirms=True, on_return_raises=True)
            self._redelivery = Redelivery(
                self._service,
                publisher,
                self.queues,
                retry_delay=self._retry_delay,
                max_retry_delay=self._max_retry_delay,
            )
            channel = await connection.channel()
            await channel.set_qos(prefetch_count=self._prefetch)
            exchange = await channel.declare_exchange(
                self._settings.events_exchange, aio_pika.ExchangeType.TOPIC, durable=True
            )
            queues = await declare_queues(channel, self.queues)
            for event_type in self._handlers:
                await queues.main.bind(exchange, routing_key=event_type)
            tag = await queues.main.consume(self._on_message)
            self._consuming = (channel, tag)
            await self._take_deliveries()
            # A reopened channel restores the consumer (same tag) through aio-pika: taken over again.
            channel.reopen_callbacks.add(lambda *_: self._retake_deliveries())
        except BaseException as exc:
            self._failed(exc)
            await self._stop_batcher()
            await connection.close()
            raise
        connection.close_callbacks.add(self._on_connection_lost)
        connection.reconnect_callbacks.add(self._on_reconnected)
        self._connection = connection
        self.state = "running"

    async def keep_starting(self, *, max_delay: float = 10.0) -> None:
        """:meth:`start` until it succeeds, backing off; each failure is counted, logged and in :attr:`state`.

        A broker that is down is expected to come back. A refused declaration (``PRECONDITION_FAILED``: the
        queue exists with other arguments) needs an operator; it is logged as an error and ``/ready``
        shows the reason until it is fixed.
        """
        delay = 0.5
        while True:
            try:
                await self.start()
                return
            except (ConnectionError, OSError, aio_pika.exceptions.AMQPError) as exc:
                CONSUMER_RESTARTS.labels(self._service).inc()
                level = logging.WARNING if isinstance(exc, ConnectionError | OSError) else logging.ERROR
                log.log(level, "consumer %s cannot start (%s); retrying in %.1fs", self.queues.main, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, max_delay)

    async def stop(self) -> None:
        """Stop taking deliveries; batches in flight end (their acks fail once the connection is closed,
        and the broker gives their messages to the next consumer: the inbox absorbs what was committed)."""
        self.state, self.reason, self._stopping = "stopped", None, True
        await self._stop_batcher()
        if self._connection is not None:
            connection, self._connection = self._connection, None
            await connection.close()

    async def _stop_batcher(self) -> None:
        if self._batcher is not None:
            batcher, self._batcher = self._batcher, None
            batcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await batcher
        self._waiting.clear()
        self._arrived.clear()

    def _failed(self, exc: BaseException) -> None:
        self.state, self.reason = "failed", f"{type(exc).__name__}: {exc}"[:500]

    def _on_connection_lost(self, _: Any, exc: BaseException | None = None) -> None:
        if self._connection is not None and exc is not None:
            self._failed(exc)

    def _on_reconnected(self, *_: Any) -> None:
        CONSUMER_RESTARTS.labels(self._service).inc()
        self._retake_deliveries()
        self._deliveries.forget_closed_channels()
        self.state, self.reason = "running", None

    async def _take_deliveries(self) -> None:
        """Receive the consumer's deliveries straight from the channel (:meth:`_on_delivered`;
        :func:`take_over_deliveries` says why), else through aio-pika (:meth:`_on_message`)."""
        if self._consuming is not None:
            channel, tag = self._consuming
            await take_over_deliveries(channel, tag, self._on_delivered)

    def _retake_deliveries(self) -> None:
        # In a task of its own: the channel's restore, which calls this, is what the channel waits for.
        task = asyncio.create_task(self._take_deliveries())
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        # Queued in delivery order (no await before the append): batches, and ordered turns, keep it. Through
        # aio-pika's path a delivery takes one task more than straight from the channel, so at the take-over
        # a later delivery may be queued first: this one goes back before it (unless a batch took it already).
        delivery = self._deliveries.arrived(message)
        position = len(self._waiting)
        while position:
            later = self._waiting[position - 1]
            if later.channel is not delivery.channel or later.tag < delivery.tag:
                break
            position -= 1
        self._waiting.insert(position, delivery)
        self._arrived.set()

    async def _on_delivered(self, message: DeliveredMessage) -> None:
        self._waiting.append(self._deliveries.delivered(message))
        self._arrived.set()

    async def _batches(self) -> None:
        """Cut the waiting deliveries into batches, at most ``batches_in_flight`` running at once."""
        slots = asyncio.Semaphore(self._batches_in_flight)
        while True:
            await slots.acquire()
            await self._arrived.wait()
            if len(self._waiting) < self._batch_size and self._batch_window > 0:
                await asyncio.sleep(self._batch_window)
            batch, self._waiting = self._waiting[: self._batch_size], self._waiting[self._batch_size :]
            if not self._waiting:
                self._arrived.clear()
            ordered = {
                d.event.subject for d in batch if isinstance(d.event, CloudEvent) and d.event.type in self._ordered
            }
            previous, mine = self._turns.take(ordered)
            task = asyncio.create_task(self._run_batch(batch, previous, mine))
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)
            task.add_done_callback(lambda _: slots.release())

    async def _run_batch(
        self, batch: list[Delivery], previous: set[asyncio.Future[None]], mine: asyncio.Future[None] | None
    ) -> None:
        try:
            for turn in previous:
                # Shielded: this batch being cancelled must not cancel the turn an earlier one ends.
                await asyncio.shield(turn)
            handled = [d for d in batch if self._admitted(d)]
            if len(handled) < len(batch):
                admitted = {id(d) for d in handled}
                for delivery in batch:
                    if id(delivery) not in admitted:
                        await self._settle(delivery)
            if len(handled) == 1:
                await self._settle(handled[0])
            elif handled:
                await self._handle_batch(handled)
        finally:
            if mine is not None:
                self._turns.end(mine)

    def _admitted(self, delivery: Delivery) -> bool:
        """An envelope with a handler here, from its type's publisher (the rest is settled on its own)."""
        event = delivery.event
        return (
            isinstance(event, CloudEvent) and event.type in self._handlers and self._verifier.forgery(delivery) is None
        )

    async def _handle_batch(self, batch: list[Delivery]) -> None:
        BATCH_SIZE.labels(self._service).observe(len(batch))
        try:
            outcomes = await self._through_outages(lambda: self._handle_together(batch), f"a batch of {len(batch)}")
        except Exception:
            # One of them is poison (or several): each on its own, so only they are retried.
            BATCH_FALLBACKS.labels(self._service).inc()
            log.warning("a batch of %d failed; handling its messages one by one", len(batch), exc_info=True)
            for delivery in batch:
                await self._settle(delivery)
            return
        if outcomes is None:
            return  # stopping: not acked, the broker gives them to the next consumer
        count_batch(self._service, [d.event for d in batch if isinstance(d.event, CloudEvent)], outcomes)
        try:
            await self._deliveries.ack(batch)
        except Exception:
            log.warning("could not ack a batch of %d; the broker redelivers it", len(batch), exc_info=True)

    async def _handle_together(self, batch: list[Delivery]) -> list[str]:
        """One transaction: the inbox rows of the batch, then each new event's handler; the outcome of each."""
        events = [d.event for d in batch if isinstance(d.event, CloudEvent)]
        # Sorted, so two consumers inserting overlapping batches take the rows' locks in one order; a list
        # of rows, so the statement is compiled once (cached) and sent as a multi-row insert.
        ids = sorted({e.id for e in events})
        async with self._sessions() as session, session.begin():
            new = set((await session.execute(self._inbox_batch, {"consumer": self._service, "ids": ids})).scalars())
            first: list[tuple[Delivery, CloudEvent]] = []  # an envelope twice in the batch: the first counts
            for delivery, event in zip(batch, events, strict=True):
                if event.id in new:
                    new.discard(event.id)
                    first.append((delivery, event))
            done_types: set[str] = set()
            for delivery, event in first:
                handler = self._handlers[event.type]
                batch_handler = batch_handler_of(handler)
                if batch_handler is None:
                    with self._span(event, delivery.trace_context()):
                        await handler(session, event)
                elif event.type not in done_types:
                    done_types.add(event.type)
                    with self._span(event, None, batch=True):
                        await batch_handler(session, [e for _, e in first if e.type == event.type])
        handled = {id(d) for d, _ in first}
        return ["handled" if id(d) in handled else "duplicate" for d in batch]

    def _span(self, event: CloudEvent, context: Context | None, *, batch: bool = False) -> Any:
        return trace.get_tracer(__name__).start_as_current_span(
            f"{event.type} process{' batch' if batch else ''}",
            context=context,
            kind=trace.SpanKind.CONSUMER,
            attributes={
                "messaging.system": "rabbitmq",
                "messaging.message.id": str(event.id),
                "messaging.destination.name": self.queues.main,
                "messaging.rabbitmq.destination.routing_key": event.type,
                "messaging.consumer.group.name": self._service,
            },
        )

    async def _settle(self, delivery: Delivery) -> None:
        """Handle one delivery on its own: handled and acked, retried, dead-lettered, or given back."""
        try:
            await self._process(delivery)
        except Exception:
            # The retry/dead-letter copy is not safely stored (broker trouble): give the original back.
            # The queue's delivery limit still bounds how often that can happen to one message.
            log.exception("could not settle message %s; returning it to the queue", delivery.message.message_id)
            with contextlib.suppress(Exception):
                await delivery.message.nack(requeue=True)
            self._deliveries.settled(delivery)
        # Committed deliveries of later batches may have waited for this one to be settled.
        with contextlib.suppress(Exception):
            await self._deliveries.flush(delivery.channel)

    @property
    def _redelivered(self) -> Redelivery:
        assert self._redelivery is not None, "started"
        return self._redelivery

    async def _ack(self, delivery: Delivery) -> None:
        self._deliveries.settled(delivery)
        await delivery.message.ack()

    async def _process(self, delivery: Delivery) -> None:
        message, event = delivery.message, delivery.event
        if not isinstance(event, CloudEvent):
            await self._redelivered.dead_letter(message, "malformed", str(event), attempts=0)
            await self._ack(delivery)
            return
        handler = self._handlers.get(event.type)
        if handler is None:
            # A binding left by an earlier version of this service: nobody here wants it.
            EVENTS_CONSUMED.labels(self._service, event.type, "ignored").inc()
            await self._ack(delivery)
            return
        forgery = self._verifier.forgery(delivery)
        if forgery is not None:
            # Only the catalog's publisher states this fact, signed with its key; anyone else with broker
            # access is forging it.
            await self._redelivered.dead_letter(message, "forged", forgery, attempts=0)
            await self._ack(delivery)
            return
        attempts = attempts_of(message) + 1
        with self._span(event, delivery.trace_context()) as span:
            CONSUMER_LAG.labels(self._service).observe(max(0.0, (datetime.now(UTC) - event.time).total_seconds()))
            outcome: str | None = "failed"
            try:
                outcome = await self._through_outages(lambda: self._handle(handler, event), event.type)
            except Exception as exc:
                span.record_exception(exc)
                span.set_status(trace.StatusCode.ERROR)
                HANDLER_FAILURES.labels(self._service, event.type).inc()
                log.warning("handler for %s failed (attempt %d)", event.type, attempts, exc_info=True)
                if attempts >= self._max_attempts:
                    await self._redelivered.dead_letter(message, "failed", repr(exc), attempts=attempts)
                else:
                    await self._redelivered.retry(message, repr(exc), attempts=attempts)
            else:
                if outcome is not None:
                    EVENTS_CONSUMED.labels(self._service, event.type, outcome).inc()
        if outcome is None:
            return  # stopping: not acked, the broker gives it to the next consumer
        await self._ack(delivery)

    async def _through_outages(self, run: Callable[[], Awaitable[T]], what: str) -> T | None:
        return await through_outages(
            run, what, service=self._service, stopping=lambda: self._stopping, max_backoff=self._max_infra_backoff
        )

    async def _handle(self, handler: Handler, event: CloudEvent) -> str:
        async with self._sessions() as session, session.begin():
            first_time = await session.scalar(
                insert(self._inbox)
                .values(consumer=self._service, event_id=event.id)
                .on_conflict_do_nothing()
                .returning(self._inbox.c.event_id)
            )
            if first_time is None:
                return "duplicate"
            await handler(session, event)
        return "handled"
