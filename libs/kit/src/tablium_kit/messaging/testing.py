"""Pytest fixtures for messaging against the real RabbitMQ (re-exported by :mod:`tablium_kit.testing`)."""

from __future__ import annotations

import itertools
import os
from collections.abc import AsyncIterator

import aio_pika
import msgspec
import pytest

from tablium_kit.messaging.catalog import publisher
from tablium_kit.messaging.signing import EventSigner
from tablium_kit.messaging.topology import QueueNames

AMQP_URL = os.environ.get("TABLIUM_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")


def signed_message(
    body: bytes, *, signer: EventSigner | None = None, headers: dict[str, str] | None = None, **properties: object
) -> aio_pika.Message:
    """A message as a relay publishes it: ``body`` signed by ``signer``, by default the development key of the
    publisher of the event type the body names (what consumers with an empty trust store, tests, accept)."""
    if signer is None:
        event_type = msgspec.json.decode(body, type=dict)["type"]
        signer = EventSigner.development(publisher(event_type))
    return aio_pika.Message(body, headers={**(headers or {}), **signer.headers(body)}, **properties)  # type: ignore[arg-type]


class AmqpNames:
    """An exchange and queue names private to one test run; all of them are deleted when it ends."""

    def __init__(self, run_id: str, url: str = AMQP_URL) -> None:
        self.url = url
        self.exchange = f"tablium.events.test-{run_id}"
        self._prefix = f"test-{run_id}"
        self._counter = itertools.count()
        self._queues: list[str] = []

    def queue_prefix(self) -> str:
        """A fresh prefix, so each test's ``QueueNames.for_service(service, prefix)`` are its own."""
        return f"{self._prefix}-{next(self._counter)}."

    def service_queues(self, service: str, prefix: str | None = None) -> QueueNames:
        names = QueueNames.for_service(service, prefix if prefix is not None else self.queue_prefix())
        self.track(names)
        return names

    def track(self, *names: QueueNames) -> None:
        """Delete these queues too at the end (declared by the code under test, e.g. the topology)."""
        for each in names:
            self._queues += [each.main, each.retry, each.dlq]

    def queue(self, name: str) -> str:
        """A plain queue name for a test's own listener."""
        full = f"{self.queue_prefix()}{name}"
        self._queues.append(full)
        return full

    async def delete_all(self) -> None:
        connection = await aio_pika.connect(self.url)
        async with connection:
            channel = await connection.channel()
            for name in self._queues:
                await channel.queue_delete(name)
            await channel.exchange_delete(self.exchange)


@pytest.fixture(scope="session")
async def amqp_names(run_id: str) -> AsyncIterator[AmqpNames]:
    """Use ``amqp_names.exchange`` as ``events_exchange`` and ``amqp_names.service_queues(...)`` for consumers."""
    names = AmqpNames(run_id)
    yield names
    await names.delete_all()
