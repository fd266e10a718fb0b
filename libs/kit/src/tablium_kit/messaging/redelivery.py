"""Where a message the consumer can't handle goes: back later through the retry queue (a growing delay), or to
the dead-letter queue (poison, malformed, forged, out of attempts), each as a copy published on a confirmed
channel before the original is acked."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage

from tablium_kit.messaging.metrics import DEAD_LETTERED
from tablium_kit.messaging.topology import ATTEMPTS_HEADER, ERROR_HEADER, REASON_HEADER, QueueNames

log = logging.getLogger(__name__)

# A broker that does not confirm a retry within this long is treated as down.
PUBLISH_TIMEOUT = 30.0


def attempts_of(message: AbstractIncomingMessage) -> int:
    """How many times the message was handled and failed before (its copies carry the count)."""
    value = (message.headers or {}).get(ATTEMPTS_HEADER)
    return value if isinstance(value, int) else 0


class Redelivery:
    """Retries and dead letters of one consumer, published on its confirmed channel (``publisher``: returned
    copies raise, so an original is never acked for a copy that went nowhere)."""

    def __init__(
        self,
        service: str,
        publisher: AbstractChannel,
        queues: QueueNames,
        *,
        retry_delay: float,
        max_retry_delay: float,
    ) -> None:
        self._service = service
        self._publisher = publisher
        self._queues = queues
        self._retry_delay = retry_delay
        self._max_retry_delay = max_retry_delay

    async def retry(self, message: AbstractIncomingMessage, error: str, *, attempts: int) -> None:
        delay = min(self._max_retry_delay, self._retry_delay * 2 ** (attempts - 1))
        await self._republish(message, self._queues.retry, {ATTEMPTS_HEADER: attempts, ERROR_HEADER: error}, delay)

    async def dead_letter(self, message: AbstractIncomingMessage, reason: str, error: str, *, attempts: int) -> None:
        DEAD_LETTERED.labels(self._service, reason).inc()
        log.error("dead-lettering message %s: %s %s", message.message_id, reason, error)
        await self._republish(
            message, self._queues.dlq, {ATTEMPTS_HEADER: attempts, REASON_HEADER: reason, ERROR_HEADER: error}
        )

    async def _republish(
        self, message: AbstractIncomingMessage, queue: str, extra: dict[str, Any], expiration: float | None = None
    ) -> None:
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
