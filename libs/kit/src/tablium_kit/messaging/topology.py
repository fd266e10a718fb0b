"""Names and declarations of a consuming service's queues.

``<service>.events`` (quorum) is bound to the routing keys the service handles. A failed message is
republished to ``<service>.events.retry`` with a per-message TTL; when it expires the broker dead-letters
it straight back to the main queue (by queue name, so other services never see the retry). After the
last try it goes to ``<service>.events.dlq`` to be inspected and replayed.
"""

from __future__ import annotations

from dataclasses import dataclass

from aio_pika.abc import AbstractChannel, AbstractQueue
from pamqp.common import FieldTable

# Deliveries of one message before the broker itself dead-letters it. Catches a message that kills or
# disconnects the consumer (so the handler never gets to count a failure).
CRASH_DELIVERY_LIMIT = 20

ATTEMPTS_HEADER = "x-tablium-attempts"
REASON_HEADER = "x-tablium-dead-reason"
ERROR_HEADER = "x-tablium-error"


@dataclass(frozen=True)
class QueueNames:
    main: str
    retry: str
    dlq: str

    @classmethod
    def for_service(cls, service: str, prefix: str = "") -> QueueNames:
        main = f"{prefix}{service}.events"
        return cls(main=main, retry=f"{main}.retry", dlq=f"{main}.dlq")


@dataclass(frozen=True)
class DeclaredQueues:
    main: AbstractQueue
    retry: AbstractQueue
    dlq: AbstractQueue


async def declare_queues(channel: AbstractChannel, names: QueueNames) -> DeclaredQueues:
    quorum: FieldTable = {"x-queue-type": "quorum"}
    dlq = await channel.declare_queue(names.dlq, durable=True, arguments=quorum)
    main = await channel.declare_queue(
        names.main,
        durable=True,
        arguments={
            **quorum,
            "x-delivery-limit": CRASH_DELIVERY_LIMIT,
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": names.dlq,
        },
    )
    retry = await channel.declare_queue(
        names.retry,
        durable=True,
        arguments={**quorum, "x-dead-letter-exchange": "", "x-dead-letter-routing-key": names.main},
    )
    return DeclaredQueues(main=main, retry=retry, dlq=dlq)
