"""Registration publishes ``player.registered`` once, through the outbox."""

from __future__ import annotations

import asyncio
from typing import Any

import aio_pika
import msgspec
from litestar.testing import AsyncTestClient

from tablium_kit.messaging import CloudEvent
from tablium_kit.messaging.testing import AmqpNames


async def test_registration_publishes_player_registered(
    client: AsyncTestClient, api: Any, amqp_names: AmqpNames
) -> None:
    connection = await aio_pika.connect(amqp_names.url)
    async with connection:
        channel = await connection.channel()
        exchange = await channel.declare_exchange(amqp_names.exchange, aio_pika.ExchangeType.TOPIC, durable=True)
        queue = await channel.declare_queue(amqp_names.queue("player-registered-listener"), exclusive=True)
        await queue.bind(exchange, routing_key="player.registered")

        user = await api.register()
        # A failed registration (duplicate name) must publish nothing.
        duplicate = await client.post("/api/v1/auth/register", json={**api.new_user(), "username": user["username"]})
        assert duplicate.status_code == 409

        received: list[CloudEvent] = []
        async with asyncio.timeout(10):
            while not received:
                message = await queue.get(fail=False)
                if message is None:
                    await asyncio.sleep(0.05)
                    continue
                await message.ack()
                received.append(msgspec.json.decode(message.body, type=CloudEvent))
        await asyncio.sleep(0.5)
        assert await queue.get(fail=False) is None  # exactly one event
        event = received[0]
        assert event.type == "player.registered"
        assert event.source == "/services/player"
        assert event.subject == user["id"]
        assert event.data["username"] == user["username"]
