"""lobby.hand_completed over real RabbitMQ into the player's stats: once per hand per player, with two
consumers taking the same queue, the same envelope delivered twice and the same hand in a new envelope."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aio_pika
import msgspec
import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tablium_kit.messaging import CloudEvent, Consumer
from tablium_kit.messaging.metrics import EVENTS_CONSUMED
from tablium_kit.messaging.testing import AmqpNames, signed_message
from tablium_kit.waiting import eventually
from tablium_player.db.models import MESSAGING
from tablium_player.domain.hands import HandCompleted
from tablium_player.events.handlers import HAND_COMPLETED, HANDLERS
from tablium_player.settings import PlayerSettings

from .conftest import Seat, hand_completed, lobby_event


@pytest.fixture
async def consumers(
    client: AsyncTestClient,
    settings: PlayerSettings,
    sessions: async_sessionmaker[AsyncSession],
    amqp_names: AmqpNames,
) -> AsyncIterator[list[Consumer]]:
    """Two consumers of the player's handlers on one queue (this test's own), as two instances would be."""
    queues = amqp_names.service_queues("player")
    started = []
    for _ in range(2):
        consumer = Consumer(settings, sessions, MESSAGING, queues=queues, retry_delay=0.1)
        for event_type, handler in HANDLERS.items():
            consumer.handler(event_type)(handler)
        await consumer.start()
        started.append(consumer)
    yield started
    for consumer in started:
        await consumer.stop()


def _taken_off_the_queue() -> float:
    return sum(EVENTS_CONSUMED.labels("player", HAND_COMPLETED, o)._value.get() for o in ("handled", "duplicate"))


async def test_each_hand_counts_once_per_player_whatever_the_deliveries(
    consumers: list[Consumer],
    api: Any,
    client: AsyncTestClient,
    sessions: async_sessionmaker[AsyncSession],
    amqp_names: AmqpNames,
) -> None:
    alice, bob, carol = [uuid.UUID((await api.register())["id"]) for _ in range(3)]
    connection = await aio_pika.connect(amqp_names.url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.declare_exchange(amqp_names.exchange, aio_pika.ExchangeType.TOPIC, durable=True)
        level_ups = await channel.declare_queue(amqp_names.queue("level-up-listener"), exclusive=True)
        await level_ups.bind(exchange, routing_key="player.level_up")
        # player.registered needs a route too: the relay keeps a subject's events in order, so a player's
        # level_up waits behind their registration (the wallet's queue takes it in production).
        registered = await channel.declare_queue(amqp_names.queue("registered-listener"), exclusive=True)
        await registered.bind(exchange, routing_key="player.registered")

        # Alice wins 110 big blinds from Bob (XP 10 + 100 capped: level 2); rake 300 out of the pot.
        big_pot = hand_completed(
            [
                Seat(alice, 10_000, 21_000, rake=300, won=21_000, vpip=True, pfr=True),
                Seat(bob, 11_300, 0, vpip=True),
            ]
        )
        # Alice folds her big blind to Carol's raise.
        blind = hand_completed([Seat(alice, 21_000, 20_900), Seat(carol, 5_000, 5_100, won=200, vpip=True, pfr=True)])
        # A tournament hand: counted, XP, but no money results.
        tournament = hand_completed(
            [Seat(bob, 1_500, 3_000, won=3_000, vpip=True), Seat(carol, 1_500, 0, vpip=True, pfr=True)],
            asset="",
            tournament_id=uuid.uuid4(),
        )
        first = lobby_event(big_pot)
        deliveries = [
            first,
            first,  # the same message again (a redelivery)
            lobby_event(big_pot),  # the same hand in a new envelope (a republish)
            lobby_event(blind),
            lobby_event(tournament),
        ]
        random.shuffle(deliveries)
        before = _taken_off_the_queue()
        for event in deliveries:
            await exchange.publish(
                signed_message(msgspec.json.encode(event), message_id=str(event.id)), routing_key=event.type
            )

        async def drained() -> bool:
            return _taken_off_the_queue() - before >= len(deliveries)

        await eventually(drained, within_s=60, every_s=0.05)

        profiles = {p: (await client.get(f"/api/v1/players/{p}")).json() for p in (alice, bob, carol)}
        assert profiles[alice]["xp"] == 110 + 10
        assert profiles[alice]["level"] == 2
        assert profiles[alice]["next_level_xp"] == 300
        assert profiles[alice]["stats"] == {
            "hands_played": 2,
            "hands_vpip": 1,
            "hands_pfr": 1,
            "vpip_pct": 50.0,
            "pfr_pct": 50.0,
            "tournaments_played": 0,
            "winnings": [
                {
                    "asset": "USDT",
                    "hands_played": 2,
                    "net_winnings": "10900",
                    "rake_paid": "300",
                    "biggest_pot_won": "21000",
                }
            ],
        }
        assert (profiles[bob]["xp"], profiles[bob]["level"]) == (10 + 10 + 15, 1)
        assert profiles[bob]["stats"]["hands_played"] == 2
        assert profiles[bob]["stats"]["winnings"] == [
            {"asset": "USDT", "hands_played": 1, "net_winnings": "-11300", "rake_paid": "0", "biggest_pot_won": "0"}
        ]
        assert (profiles[carol]["stats"]["hands_played"], profiles[carol]["stats"]["hands_pfr"]) == (2, 2)
        assert profiles[carol]["stats"]["winnings"][0]["net_winnings"] == "100"

        async with sessions() as session:
            rows = await session.scalar(
                text("SELECT count(*) FROM played_hands WHERE player_id = ANY(:p)"), {"p": [alice, bob, carol]}
            )
        assert rows == 6

        # Alice's level 2, announced once, through the outbox and the relay.
        async with level_ups.iterator() as messages:
            async with asyncio.timeout(20):
                message = await anext(messages)
            await message.ack()
        event = msgspec.json.decode(message.body, type=CloudEvent)
        assert (event.type, event.source, event.subject) == ("player.level_up", "/services/player", str(alice))
        # The big pot crosses level 2 whichever order the hands came in; the XP it announces is the total at
        # that moment: 110, or 120 when the blind hand was counted first (the deliveries are shuffled).
        assert event.data.pop("xp") in (110, 120)
        assert event.data == {"player_id": str(alice), "old_level": 1, "new_level": 2, "hand_id": big_pot["hand_id"]}
        async with sessions() as session:
            announced = await session.scalar(
                text("SELECT count(*) FROM outbox WHERE type = 'player.level_up' AND subject = :p"), {"p": str(alice)}
            )
        assert announced == 1


def test_a_hand_with_a_malformed_amount_is_refused() -> None:
    data = hand_completed([Seat(uuid.uuid4(), 100, 0), Seat(uuid.uuid4(), 100, 200)])
    data["players"][0]["stack_after"] = "1e3"
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert(data, HandCompleted)
