"""Domain events: CloudEvents envelope, catalog, transactional outbox + relay, effect-once consumer.

A service wires it like this (see docs/adr/0002-messaging.md)::

    tables = messaging_tables(Base.metadata)
    outbox = Outbox("wallet", tables)            # await outbox.add(session, type=..., subject=..., data=...)
    relay = Relay(settings, sessions, tables)    # await relay.start() / relay.stop() in the lifespan
    consumer = Consumer(settings, sessions, tables)

    @consumer.handler("blockchain.deposit_confirmed")             # ordered=True: one subject at a time
    async def credit(session: AsyncSession, event: CloudEvent) -> None: ...

A service built with ``create_service_app`` gives ``messaging=`` and ``event_handlers=`` instead (mark a
handler with :func:`ordered_by_subject` there); ``tablium-<svc> migrate`` declares every consumer's queues.
The consumer handles deliveries in batches, one transaction each; a handler built with
:func:`handles_batches` gets all of its type's events of a batch at once.
"""

from tablium_kit.messaging.batches import BatchHandler, Handler, handles_batches
from tablium_kit.messaging.catalog import CATALOG, EventSpec, asyncapi
from tablium_kit.messaging.consumer import Consumer, ordered_by_subject
from tablium_kit.messaging.deadletters import DeadLetter, dead_letters_cli, list_dead_letters, replay_dead_letters
from tablium_kit.messaging.envelope import CONTENT_TYPE, MAX_EVENT_BYTES, CloudEvent
from tablium_kit.messaging.outbox import EventTooLargeError, Outbox, OutboxRow, UnknownEventError, events_committed
from tablium_kit.messaging.relay import Relay
from tablium_kit.messaging.tables import MessagingTables, messaging_tables
from tablium_kit.messaging.topology import QueueNames, declare_topology

__all__ = [
    "CATALOG",
    "CONTENT_TYPE",
    "MAX_EVENT_BYTES",
    "BatchHandler",
    "CloudEvent",
    "Consumer",
    "DeadLetter",
    "EventSpec",
    "EventTooLargeError",
    "Handler",
    "MessagingTables",
    "Outbox",
    "OutboxRow",
    "QueueNames",
    "Relay",
    "UnknownEventError",
    "asyncapi",
    "dead_letters_cli",
    "declare_topology",
    "events_committed",
    "handles_batches",
    "list_dead_letters",
    "messaging_tables",
    "ordered_by_subject",
    "replay_dead_letters",
]
