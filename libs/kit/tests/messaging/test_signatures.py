"""Signed events (signing.py) against the real Postgres and RabbitMQ, with keys as ``make up`` gives them.

Anyone who can publish on the broker (``guest`` on a development platform) could state any event with the
right ``source``: a deposit, a hand's rake, a payout. Only what the publisher's relay signed is handled.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import aio_pika
import msgspec
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tablium_kit.auth import local_service_keys
from tablium_kit.messaging import Consumer, Relay, list_dead_letters
from tablium_kit.messaging.envelope import encode, new_event
from tablium_kit.messaging.signing import SIGNATURE_HEADER, EventSigner, EventVerifier
from tablium_kit.messaging.testing import AmqpNames
from tablium_kit.service_identity import ServiceTrust
from tablium_kit.settings import ServiceSettings

from .conftest import TABLES, effect_counts, record_effect, register, wait_until
from .test_hardening import sample


@pytest.fixture
def keyed(tmp_path: Path) -> dict[str, str]:
    """Each service's own key and the trust store of all of them (what ``make up`` and production run with)."""
    return local_service_keys(["player", "wallet"], tmp_path / "keys")


def keyed_settings(service: str, env: dict[str, str], amqp_names: AmqpNames) -> ServiceSettings:
    return ServiceSettings(
        service_name=service,
        events_exchange=amqp_names.exchange,
        amqp_url=amqp_names.url,
        service_key=env[f"TABLIUM_{service.upper()}_SERVICE_KEY"],
        service_trust=json.loads(env["TABLIUM_SERVICE_TRUST"]),
    )


@pytest.fixture
async def consumers() -> AsyncIterator[list[Consumer]]:
    started: list[Consumer] = []
    yield started
    for consumer in started:
        await consumer.stop()


def test_the_verifier_accepts_only_the_publishers_key_over_the_exact_body(keyed: dict[str, str]) -> None:
    settings = ServiceSettings(service_name="wallet", service_trust=json.loads(keyed["TABLIUM_SERVICE_TRUST"]))
    verifier = EventVerifier.from_settings(settings)
    player = EventSigner.from_settings(
        ServiceSettings(service_name="player", service_key=keyed["TABLIUM_PLAYER_SERVICE_KEY"])
    )
    wallet = EventSigner.from_settings(
        ServiceSettings(service_name="wallet", service_key=keyed["TABLIUM_WALLET_SERVICE_KEY"])
    )
    body = encode(new_event(service="player", type="player.registered", subject="p", data={}))
    assert verifier.problem("player", body, player.headers(body)) is None
    assert verifier.problem("player", body, None) == "not signed"
    assert verifier.problem("player", body, wallet.headers(body)) == "signed by wallet, not by player"
    assert verifier.problem("player", body + b" ", player.headers(body)) == "bad signature"
    forged = {**player.headers(body), SIGNATURE_HEADER: "not base64 at all!"}
    assert verifier.problem("player", body, forged) == "bad signature"
    # A development key (computable by anyone) is refused once the trust store has keys in it.
    problem = verifier.problem("player", body, EventSigner.development("player").headers(body))
    assert problem is not None
    assert "unknown key" in problem
    # An empty trust store (tests, development) trusts the development keys, still only the publisher's.
    development = EventVerifier(ServiceTrust({}))
    assert development.problem("player", body, EventSigner.development("player").headers(body)) is None
    assert development.problem("player", body, EventSigner.development("wallet").headers(body)) is not None


async def test_events_not_signed_by_their_publisher_are_dead_lettered_and_change_nothing(
    sessions: async_sessionmaker[AsyncSession],
    amqp_names: AmqpNames,
    consumers: list[Consumer],
    keyed: dict[str, str],
) -> None:
    queues = amqp_names.service_queues("wallet")
    consumer = Consumer(keyed_settings("wallet", keyed, amqp_names), sessions, TABLES, queues=queues)
    consumer.handler("player.registered")(record_effect)
    await consumer.start()
    consumers.append(consumer)
    forged_before = sample("tablium_events_dead_lettered_total", {"service": "wallet", "reason": "forged"})

    # What a tester with the broker's guest/guest can do: the right type and source, by hand.
    wallet_key = EventSigner.from_settings(keyed_settings("wallet", keyed, amqp_names))
    player_key = EventSigner.from_settings(keyed_settings("player", keyed, amqp_names))
    unsigned = new_event(service="player", type="player.registered", subject="p-unsigned", data={})
    by_wallet = new_event(service="player", type="player.registered", subject="p-by-wallet", data={})
    by_dev_key = new_event(service="player", type="player.registered", subject="p-dev", data={})
    altered = new_event(service="player", type="player.registered", subject="p-altered", data={"v": 1})
    signed_before = player_key.headers(encode(altered))
    altered_body = msgspec.json.encode({**msgspec.to_builtins(altered), "data": {"v": 2}})
    forgeries = [
        (unsigned, encode(unsigned), {}),
        (by_wallet, encode(by_wallet), wallet_key.headers(encode(by_wallet))),
        (by_dev_key, encode(by_dev_key), EventSigner.development("player").headers(encode(by_dev_key))),
        (altered, altered_body, signed_before),
    ]
    connection = await aio_pika.connect(amqp_names.url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(amqp_names.exchange)
        for event, body, headers in forgeries:
            message = aio_pika.Message(body, headers=headers, message_id=str(event.id))  # type: ignore[arg-type]
            await exchange.publish(message, routing_key=event.type)
    # And the genuine article, through the player's relay, signed with the player's own key.
    relay = Relay(keyed_settings("player", keyed, amqp_names), sessions, TABLES, poll_interval=0.2)
    genuine = await register(sessions, "p-genuine")
    await relay.start()
    try:

        async def settled() -> bool:
            letters = await list_dead_letters(amqp_names.url, queues)
            return bool(await effect_counts(sessions)) and len(letters) == len(forgeries)

        await wait_until(settled)
    finally:
        await relay.stop()
    letters = await list_dead_letters(amqp_names.url, queues)
    assert {(letter.message_id, letter.reason) for letter in letters} == {
        (str(event.id), "forged") for event, _, _ in forgeries
    }
    errors = {letter.message_id: letter.error for letter in letters}
    assert errors[str(unsigned.id)] == "not signed"
    assert errors[str(by_wallet.id)] == "signed by wallet, not by player"
    assert "unknown key" in errors[str(by_dev_key.id)]
    assert errors[str(altered.id)] == "bad signature"
    assert await effect_counts(sessions) == {genuine: 1}
    forged_after = sample("tablium_events_dead_lettered_total", {"service": "wallet", "reason": "forged"})
    assert forged_after == forged_before + len(forgeries)
