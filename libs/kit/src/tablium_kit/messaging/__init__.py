"""Domain events: CloudEvents envelope, catalog, transactional outbox + relay, effect-once consumer.

A service wires it like this (see docs/adr/0002-messaging.md)::

    tables = messaging_tables(Base.metadata)
    outbox = Outbox("wallet", tables)            # await outbox.add(session, type=..., subject=..., data=...)
    relay = Relay(settings, sessions, tables)    # await relay.start() / relay.stop() in the lifespan
    consumer = Consumer(settings, sessions, tables)

    @consumer.handler("blockchain.deposit_confirmed")
    async def credit(session: AsyncSession, event: CloudEvent) -> None: ...
"""

from tablium_kit.messaging.catalog import CATALOG, EventSpec, asyncapi
from tablium_kit.messaging.consumer import Consumer
from tablium_kit.messaging.deadletters import DeadLetter, dead_letters_cli, list_dead_letters, replay_dead_letters
from tablium_kit.messaging.envelope import CONTENT_TYPE, CloudEvent
from tablium_kit.messaging.outbox import Outbox, UnknownEventError
from tablium_kit.messaging.relay import Relay
from tablium_kit.messaging.tables import MessagingTables, messaging_tables
from tablium_kit.messaging.topology import QueueNames

__all__ = [
    "CATALOG",
    "CONTENT_TYPE",
    "CloudEvent",
    "Consumer",
    "DeadLetter",
    "EventSpec",
    "MessagingTables",
    "Outbox",
    "QueueNames",
    "Relay",
    "UnknownEventError",
    "asyncapi",
    "dead_letters_cli",
    "list_dead_letters",
    "messaging_tables",
    "replay_dead_letters",
]
