"""Consuming events: a service's durable quorum queue, handlers run effect-once in a DB transaction.

For each message: decode the envelope (malformed → dead letters), check that its ``source`` is the
type's one publisher in the catalog (else forged → dead letters), then in ONE transaction insert the
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

Concurrency contract (ADR 0002): deliveries are handled concurrently, one task each, up to ``prefetch``
at a time, so handlers see events out of order. A handler registered with ``ordered=True`` (or marked
with :func:`ordered_by_subject`) sees the events of one ``subject`` one after another in delivery
order; other subjects still run concurrently.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

import aio_pika
import httpx
import msgspec
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractRobustConnection
from opentelemetry import propagate, trace
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tablium_kit.errors import transient_failure
from tablium_kit.internal import RETRYABLE_STATUS, UpstreamError
from tablium_kit.messaging import envelope
from tablium_kit.messaging.catalog import source_of
from tablium_kit.messaging.connection import connect
from tablium_kit.messaging.envelope import CloudEvent
from tablium_kit.messaging.metrics import (
    CONSUMER_LAG,
    CONSUMER_RESTARTS,
    DEAD_LETTERED,
    EVENTS_CONSUMED,
    HANDLER_FAILURES,
    INFRA_RETRIES,
)
from tablium_kit.messaging.tables import MessagingTables
from tablium_kit.messaging.topology import (
    ATTEMPTS_HEADER,
    ERROR_HEADER,
    REASON_HEADER,
    QueueNames,
    declare_queues,
)
from tablium_kit.settings import ServiceSettings

log = logging.getLogger(__name__)

Handler = Callable[[AsyncSession, CloudEvent], Awaitable[None]]
H = TypeVar("H", bound=Handler)
State = Literal["stopped", "starting", "running", "failed"]

# A broker that does not confirm a retry within this long is treated as down.
PUBLISH_TIMEOUT = 30.0
_ORDERED = "__tablium_ordered_by_subject__"


def infrastructure_failure(exc: BaseException) -> bool:
    """Whether ``exc`` says a dependency is away (retry in place) rather than the message is poison."""
    if transient_failure(exc):
        return True
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, httpx.TransportError):
            return True
        if isinstance(cause, UpstreamError) and cause.status in RETRYABLE_STATUS:
            return True
        cause = cause.__cause__ or cause.__context__
    return False


def ordered_by_subject(handler: H) -> H:
    """Mark a handler to see one subject's events one at a time, in delivery order (``event_handlers``)."""
    setattr(handler, _ORDERED, True)
    return handler


class Consumer:
    """Register handlers with ``@consumer.handler("wallet.transfer_posted")``, then ``await consumer.start()``.

    :attr:`state` and :attr:`reason` say where it is (what ``/ready`` reports).
    """

    def __init__(
        self,
        settings: ServiceSettings,
        sessions: async_sessionmaker[AsyncSession],
        tables: MessagingTables,
        *,
        queues: QueueNames | None = None,
        prefetch: int = 32,
        max_attempts: int = 5,
        retry_delay: float = 1.0,
        max_retry_delay: float = 300.0,
        max_infra_backoff: float = 5.0,
    ) -> None:
        self._settings = settings
        self._service = settings.service_name
        self._sessions = sessions
        self._inbox = tables.inbox
        self.queues = queues or QueueNames.for_service(settings.service_name)
        self._prefetch = prefetch
        self._max_attempts = max_attempts
        self._retry_delay = retry_delay
        self._max_retry_delay = max_retry_delay
        self._max_infra_backoff = max_infra_backoff
        self._handlers: dict[str, Handler] = {}
        self._ordered: set[str] = set()
        # Per subject, the turn of the last delivery queued for an ordered handler.
        self._turns: dict[str, asyncio.Future[None]] = {}
        self._connection: AbstractRobustConnection | None = None
        self._publisher: AbstractChannel | None = None
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
        try:
            # Retries and dead letters are published on their own confirmed channel: the original is
            # acked only once its copy is safely in the broker. Returned (its queue is gone) raises, so
            # the original goes back to the queue rather than being acked for a copy that went nowhere.
            self._publisher = await connection.channel(publisher_confirms=True, on_return_raises=True)
            channel = await connection.channel()
            await channel.set_qos(prefetch_count=self._prefetch)
            exchange = await channel.declare_exchange(
                self._settings.events_exchange, aio_pika.ExchangeType.TOPIC, durable=True
            )
            queues = await declare_queues(channel, self.queues)
            for event_type in self._handlers:
                await queues.main.bind(exchange, routing_key=event_type)
            await queues.main.consume(self._on_message)
        except BaseException as exc:
            self._failed(exc)
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
        self.state, self.reason, self._stopping = "stopped", None, True
        if self._connection is not None:
            connection, self._connection = self._connection, None
            await connection.close()

    def _failed(self, exc: BaseException) -> None:
        self.state, self.reason = "failed", f"{type(exc).__name__}: {exc}"[:500]

    def _on_connection_lost(self, _: Any, exc: BaseException | None = None) -> None:
        if self._connection is not None and exc is not None:
            self._failed(exc)

    def _on_reconnected(self, *_: Any) -> None:
        CONSUMER_RESTARTS.labels(self._service).inc()
        self.state, self.reason = "running", None

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        # Decoded before the first await: an ordered handler's turn is taken in delivery order.
        try:
            event: CloudEvent | msgspec.MsgspecError = envelope.decode(message.body)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            event = exc
        ordered = isinstance(event, CloudEvent) and event.type in self._ordered
        subject = event.subject if isinstance(event, CloudEvent) else ""
        previous, mine = self._take_turn(subject) if ordered else (None, None)
        try:
            if previous is not None:
                # Shielded: this delivery being cancelled must not cancel the turn the previous one ends.
                await asyncio.shield(previous)
            await self._process(message, event)
        except Exception:
            # The retry/dead-letter copy is not safely stored (broker trouble): give the original back.
            # The queue's delivery limit still bounds how often that can happen to one message.
            log.exception("could not settle message %s; returning it to the queue", message.message_id)
            with contextlib.suppress(Exception):
                await message.nack(requeue=True)
        finally:
            if mine is not None:
                self._end_turn(subject, mine)

    def _take_turn(self, subject: str) -> tuple[asyncio.Future[None] | None, asyncio.Future[None]]:
        """(the previous delivery's turn to wait for, this one's)."""
        mine: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        previous = self._turns.get(subject)
        self._turns[subject] = mine
        return previous, mine

    def _end_turn(self, subject: str, mine: asyncio.Future[None]) -> None:
        mine.set_result(None)
        if self._turns.get(subject) is mine:
            del self._turns[subject]

    async def _process(self, message: AbstractIncomingMessage, event: CloudEvent | msgspec.MsgspecError) -> None:
        if not isinstance(event, CloudEvent):
            await self._dead_letter(message, "malformed", str(event), attempts=0)
            await message.ack()
            return
        handler = self._handlers.get(event.type)
        if handler is None:
            # A binding left by an earlier version of this service: nobody here wants it.
            EVENTS_CONSUMED.labels(self._service, event.type, "ignored").inc()
            await message.ack()
            return
        if event.source != source_of(event.type):
            # Only the catalog's publisher states this fact; anyone else with broker access is forging it.
            await self._dead_letter(
                message, "forged", f"source {event.source!r} is not {source_of(event.type)!r}", attempts=0
            )
            await message.ack()
            return
        headers = message.headers or {}
        attempts = _int(headers.get(ATTEMPTS_HEADER)) + 1
        tracer = trace.get_tracer(__name__)
        with tracer.start_as_current_span(
            f"{event.type} process",
            context=propagate.extract({k: v for k, v in headers.items() if isinstance(v, str)}),
            kind=trace.SpanKind.CONSUMER,
            attributes={
                "messaging.system": "rabbitmq",
                "messaging.message.id": str(event.id),
                "messaging.destination.name": self.queues.main,
                "messaging.rabbitmq.destination.routing_key": event.type,
                "messaging.consumer.group.name": self._service,
            },
        ) as span:
            CONSUMER_LAG.labels(self._service).observe(max(0.0, (datetime.now(UTC) - event.time).total_seconds()))
            outcome = "failed"
            try:
                outcome = await self._handle_through_outages(handler, event)
            except Exception as exc:
                span.record_exception(exc)
                span.set_status(trace.StatusCode.ERROR)
                HANDLER_FAILURES.labels(self._service, event.type).inc()
                log.warning("handler for %s failed (attempt %d)", event.type, attempts, exc_info=True)
                if attempts >= self._max_attempts:
                    await self._dead_letter(message, "failed", repr(exc), attempts=attempts)
                else:
                    await self._retry(message, repr(exc), attempts=attempts)
            else:
                if outcome != "stopped":
                    EVENTS_CONSUMED.labels(self._service, event.type, outcome).inc()
        if outcome == "stopped":
            return  # not acked: the broker gives it to the next consumer
        await message.ack()

    async def _handle_through_outages(self, handler: Handler, event: CloudEvent) -> str:
        """Run the handler until it succeeds or fails on its own; infrastructure failures are waited out."""
        delay = 0.1
        while True:
            try:
                return await self._handle(handler, event)
            except Exception as exc:
                if not infrastructure_failure(exc):
                    raise
                if self._stopping:
                    return "stopped"
                INFRA_RETRIES.labels(self._service).inc()
                log.warning(
                    "handler for %s met an infrastructure failure (%r); retrying in %.1fs", event.type, exc, delay
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._max_infra_backoff)

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

    async def _retry(self, message: AbstractIncomingMessage, error: str, *, attempts: int) -> None:
        delay = min(self._max_retry_delay, self._retry_delay * 2 ** (attempts - 1))
        await self._republish(message, self.queues.retry, {ATTEMPTS_HEADER: attempts, ERROR_HEADER: error}, delay)

    async def _dead_letter(self, message: AbstractIncomingMessage, reason: str, error: str, *, attempts: int) -> None:
        DEAD_LETTERED.labels(self._service, reason).inc()
        log.error("dead-lettering message %s: %s %s", message.message_id, reason, error)
        await self._republish(
            message, self.queues.dlq, {ATTEMPTS_HEADER: attempts, REASON_HEADER: reason, ERROR_HEADER: error}
        )

    async def _republish(
        self, message: AbstractIncomingMessage, queue: str, extra: dict[str, Any], expiration: float | None = None
    ) -> None:
        assert self._publisher is not None
        # The broker's own bookkeeping headers (x-death, x-delivery-count...) would only pile up.
        headers = {
            k: v for k, v in (message.headers or {}).items() if k.startswith("x-tablium-") or not k.startswith("x-")
        }
        publish = self._publisher.default_exchange.publish(
            aio_pika.Message(
                body=message.body,
                headers={**headers, **{k: v[:1000] if isinstance(v, str) else v for k, v in extra.items()}},
                content_type=message.content_type,
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                message_id=message.message_id,
                type=message.type,
                expiration=expiration,
            ),
            routing_key=queue,
        )
        await asyncio.wait_for(publish, PUBLISH_TIMEOUT)


def _int(value: Any) -> int:
    return value if isinstance(value, int) else 0
