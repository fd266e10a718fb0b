"""Names and declarations of the consuming services' queues.

``<service>.events.v2`` (quorum) is bound to the routing keys the service consumes. A failed message is
republished to ``<service>.events.v2.retry`` with a per-message TTL; when it expires the broker
dead-letters it straight back to the main queue (by queue name, so other services never see the retry).
After the last try it goes to ``<service>.events.v2.dlq`` to be inspected and replayed.

Both broker-side hops (retry → main on expiry, main → DLQ past the delivery limit) dead-letter
*at least once*: a quorum queue's default strategy drops the message if the target doesn't confirm it.
``at-least-once`` requires ``x-overflow: reject-publish``. A queue's arguments can't change once
declared, so these queues carry a version in their name (``.v2``); ADR 0002 says how an operator moves
the messages of the ``v1`` queues (``<service>.events``…) over.

:func:`declare_topology` declares every consumer's queues and bindings from the catalog, so an event is
routable before its consumer first starts (``tablium-<service> migrate`` runs it at deploy time).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractQueue
from pamqp.common import FieldTable

from tablium_kit.messaging.catalog import CATALOG, EventSpec

# Deliveries of one message before the broker itself dead-letters it. Catches a message that kills or
# disconnects the consumer (so the handler never gets to count a failure).
CRASH_DELIVERY_LIMIT = 20
# Part of every queue name: bump it whenever a queue's arguments change (ADR 0002, "Moving queues").
QUEUE_VERSION = "v2"

ATTEMPTS_HEADER = "x-tablium-attempts"
REASON_HEADER = "x-tablium-dead-reason"
ERROR_HEADER = "x-tablium-error"


@dataclass(frozen=True)
class QueueNames:
    main: str
    retry: str
    dlq: str

    @classmethod
    def for_service(cls, service: str, prefix: str = "", *, version: str = QUEUE_VERSION) -> QueueNames:
        main = f"{prefix}{service}.events" + (f".{version}" if version != "v1" else "")
        return cls(main=main, retry=f"{main}.retry", dlq=f"{main}.dlq")


@dataclass(frozen=True)
class DeclaredQueues:
    main: AbstractQueue
    retry: AbstractQueue
    dlq: AbstractQueue


def queue_arguments(names: QueueNames) -> dict[str, FieldTable]:
    """The arguments of each queue, by name (what ``rabbitmqctl list_queues arguments`` should show)."""
    quorum: FieldTable = {"x-queue-type": "quorum"}
    # Without reject-publish the broker refuses the at-least-once strategy.
    at_least_once: FieldTable = {"x-dead-letter-strategy": "at-least-once", "x-overflow": "reject-publish"}
    return {
        names.dlq: quorum,
        names.main: {
            **quorum,
            **at_least_once,
            "x-delivery-limit": CRASH_DELIVERY_LIMIT,
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": names.dlq,
        },
        names.retry: {
            **quorum,
            **at_least_once,
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": names.main,
        },
    }


async def declare_queues(channel: AbstractChannel, names: QueueNames) -> DeclaredQueues:
    arguments = queue_arguments(names)
    # Dead-letter targets first: a message dead-lettered at least once waits while its target is missing.
    dlq = await channel.declare_queue(names.dlq, durable=True, arguments=arguments[names.dlq])
    main = await channel.declare_queue(names.main, durable=True, arguments=arguments[names.main])
    retry = await channel.declare_queue(names.retry, durable=True, arguments=arguments[names.retry])
    return DeclaredQueues(main=main, retry=retry, dlq=dlq)


def consumed_types(catalog: Mapping[str, EventSpec] = CATALOG) -> dict[str, list[str]]:
    """Consuming service → the event types the catalog says it consumes."""
    by_service: dict[str, list[str]] = {}
    for event_type, spec in sorted(catalog.items()):
        for service in spec.consumers:
            by_service.setdefault(service, []).append(event_type)
    return by_service


async def declare_topology(
    amqp_url: str, exchange_name: str, *, catalog: Mapping[str, EventSpec] = CATALOG, prefix: str = ""
) -> dict[str, QueueNames]:
    """Declare the events exchange and every consumer's queues, bound as the catalog says (idempotent).

    Run at deploy time with credentials allowed to declare every service's queues: an event published
    before its consumer ever started then waits in that consumer's queue rather than being returned.
    """
    declared: dict[str, QueueNames] = {}
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        exchange = await channel.declare_exchange(exchange_name, aio_pika.ExchangeType.TOPIC, durable=True)
        for service, types in consumed_types(catalog).items():
            names = QueueNames.for_service(service, prefix)
            queues = await declare_queues(channel, names)
            for event_type in types:
                await queues.main.bind(exchange, routing_key=event_type)
            declared[service] = names
    return declared
