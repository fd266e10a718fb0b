"""Item 10 of issue 11, on the broker: a service's user can't publish another service's event type.

Users and vhost are unique to this run and deleted afterwards (the broker is shared).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aio_pika
import aiormq
import pytest

from tablium_kit.messaging.brokerusers import dev_password, ensure_users
from tablium_kit.messaging.envelope import encode, new_event

from .conftest import _rabbitmqctl

EXCHANGE = "tablium.events"


@pytest.fixture
async def vhost(run_id: str) -> AsyncIterator[tuple[str, str]]:
    name, prefix = f"tablium-test-{run_id}", f"test-{run_id}-"
    await _rabbitmqctl("add_vhost", name)
    try:
        yield name, prefix
    finally:
        for service in ("player", "wallet"):
            await _rabbitmqctl("delete_user", f"{prefix}{service}")
        await _rabbitmqctl("delete_vhost", name)


async def test_a_service_user_publishes_its_own_event_types_and_no_other(vhost: tuple[str, str]) -> None:
    name, prefix = vhost
    await asyncio.to_thread(ensure_users, ["player", "wallet"], vhost=name, user_prefix=prefix)
    url = f"amqp://{prefix}player:{dev_password('player')}@127.0.0.1:5672/{name}"
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.declare_exchange(EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True)
        own = new_event(service="player", type="player.registered", subject="p", data={})
        await exchange.publish(aio_pika.Message(encode(own)), routing_key=own.type)  # confirmed

        forged = new_event(service="player", type="wallet.transfer_posted", subject="t", data={})
        with pytest.raises(aiormq.exceptions.ChannelAccessRefused, match=r"wallet\.transfer_posted"):
            await exchange.publish(aio_pika.Message(encode(forged)), routing_key=forged.type)
