"""Consuming events: a service's durable quorum queue, handlers run effect-once in a DB transaction.

For each message: decode the envelope (malformed → dead letters), then in ONE transaction insert the
inbox row ``(consumer, event id)`` and run the handler. A duplicate finds the inbox row already there and
is skipped. The message is acked only after that transaction committed. A handler that raises is
retried with exponential backoff through the retry queue; after ``max_attempts`` the message is
dead-lettered (see :mod:`tablium_kit.messaging.topology`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import aio_pika
import msgspec
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractRobustConnection
from opentelemetry import propagate, trace
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tablium_kit.messaging import envelope
from tablium_kit.messaging.connection import connect
from tablium_kit.messaging.envelope import CloudEvent
from tablium_kit.messaging.metrics import CONSUMER_LAG, DEAD_LETTERED, EVENTS_CONSUMED, HANDLER_FAILURES
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

# A broker that does not confirm a retry within this long is treated as down.
PUBLISH_TIMEOUT = 30.0


class Consumer:
    """Register handlers with ``@consumer.handler("wallet.transfer_posted")``, then ``await consumer.start()``."""

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
        self._handlers: dict[str, Handler] = {}
        self._connection: AbstractRobustConnection | None = None
        self._publisher: AbstractChannel | None = None

    def handler(self, event_type: str) -> Callable[[H], H]:
        def register(handler: H) -> H:
            if event_type in self._handlers:
                raise ValueError(f"{event_type} already has a handler")
            self._handlers[event_type] = handler
            return handler

        return register

    async def start(self) -> None:
        """Declare the queues, bind the handled event types and start consuming."""
        connection = await connect(self._settings.amqp_url, self._service, "consumer")
        try:
            # Retries and dead letters are published on their own confirmed channel: the original is
            # acked only once its copy is safely in the broker.
            self._publisher = await connection.channel(publisher_confirms=True)
            channel = await connection.channel()
            await channel.set_qos(prefetch_count=self._prefetch)
            exchange = await channel.declare_exchange(
                self._settings.events_exchange, aio_pika.ExchangeType.TOPIC, durable=True
            )
            queues = await declare_queues(channel, self.queues)
            for event_type in self._handlers:
                await queues.main.bind(exchange, routing_key=event_type)
            await queues.main.consume(self._on_message)
        except BaseException:
            await connection.close()
            raise
        self._connection = connection

    async def stop(self) -> None:
        if self._connection is not None:
            await self._connection.close()
            self._connection = None

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        try:
            await self._process(message)
        except Exception:
            # The retry/dead-letter copy is not safely stored (broker trouble): give the original back.
            # The queue's delivery limit still bounds how often that can happen to one message.
            log.exception("could not settle message %s; returning it to the queue", message.message_id)
            with contextlib.suppress(Exception):
                await message.nack(requeue=True)

    async def _process(self, message: AbstractIncomingMessage) -> None:
        try:
            event = envelope.decode(message.body)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            await self._dead_letter(message, "malformed", str(exc), attempts=0)
            await message.ack()
            return
        handler = self._handlers.get(event.type)
        if handler is None:
            # A binding left by an earlier version of this service: nobody here wants it.
            EVENTS_CONSUMED.labels(self._service, event.type, "ignored").inc()
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
            try:
                outcome = await self._handle(handler, event)
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
                EVENTS_CONSUMED.labels(self._service, event.type, outcome).inc()
        await message.ack()

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
