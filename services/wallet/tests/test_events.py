"""Events: published through the outbox in the transfer's own transaction; consumed effect-once."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aio_pika
import msgspec
import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from tablium_wallet.db.models import MESSAGING
from tablium_wallet.events.handlers import HANDLERS, deposit_transfer_id
from tablium_wallet.services.accounts import open_account
from tablium_wallet.services.batch import execute_one
from tablium_wallet.services.transfers import NewTransfer
from tablium_wallet.settings import WalletSettings

from tablium_kit.errors import ProblemError
from tablium_kit.messaging import CloudEvent, Consumer
from tablium_kit.messaging.catalog import source_of
from tablium_kit.messaging.testing import AmqpNames, signed_message
from tablium_kit.waiting import eventually

from .conftest import internal


async def _listen(amqp_names: AmqpNames, *routing_keys: str) -> tuple[Any, Any]:
    connection = await aio_pika.connect(amqp_names.url)
    channel = await connection.channel()
    exchange = await channel.declare_exchange(amqp_names.exchange, aio_pika.ExchangeType.TOPIC, durable=True)
    queue = await channel.declare_queue(amqp_names.queue("wallet-listener"), exclusive=True)
    for key in routing_keys:
        await queue.bind(exchange, routing_key=key)
    return connection, queue


async def _receive(queue: Any, subject: str) -> CloudEvent:
    async with asyncio.timeout(10):
        while True:
            message = await queue.get(fail=False)
            if message is None:
                await asyncio.sleep(0.05)
                continue
            await message.ack()
            event = msgspec.json.decode(message.body, type=CloudEvent)
            if event.subject == subject:
                return event


async def test_transfer_event_commits_with_the_transfer_and_is_published(
    client: AsyncTestClient, api: Any, sessions: async_sessionmaker[AsyncSession], amqp_names: AmqpNames
) -> None:
    connection, queue = await _listen(amqp_names, "wallet.transfer_posted", "wallet.transfer_voided")
    async with connection:
        alice, bob = await api.player(), await api.player()
        await api.fund(alice, 100)
        refused = await api.transfer(alice, bob, 500)
        assert refused.status_code == 409
        response = await api.transfer(alice, bob, 60)
        assert response.status_code == 201
        transfer_id = response.json()["id"]
        async with sessions() as session:
            rows = (
                await session.execute(
                    text("SELECT type, subject FROM outbox WHERE envelope->'data'->>'debit_account_id' = :a"),
                    {"a": alice["id"]},
                )
            ).all()
        assert rows == [("wallet.transfer_posted", transfer_id)]  # the refused one wrote nothing
        event = await _receive(queue, transfer_id)
        assert event.type == "wallet.transfer_posted"
        assert event.source == "/services/wallet"
        assert event.data["amount"] == "60"
        assert event.data["credit_owner"] == bob["owner"]
        # A hold announces nothing until it is resolved; a void is announced as such.
        hold = (await api.transfer(alice, bob, 30, pending=True)).json()
        voided = await api.client.post(f"/internal/v1/transfers/{hold['id']}/void", headers=internal())
        assert voided.status_code == 200
        event = await _receive(queue, hold["id"])
        assert event.type == "wallet.transfer_voided"
        assert (event.data["status"], event.data["pending_id"], event.data["amount"]) == ("voided", hold["id"], "30")


async def test_a_crash_between_commit_and_publish_loses_no_event(
    client: AsyncTestClient, sessions: async_sessionmaker[AsyncSession], amqp_names: AmqpNames
) -> None:
    """A transfer committed by a process that died before publishing: its event row is in the outbox, and
    the relay of the next process (here the app's, which this transaction never woke) publishes it."""
    connection, queue = await _listen(amqp_names, "wallet.transfer_posted")
    async with connection:
        transfer_id = uuid.uuid4()
        async with sessions() as session, session.begin():
            house = await open_account(session, owner="house", kind="house_fees", asset="USDT")
            player = await open_account(session, owner=f"player:{uuid.uuid4()}", kind="player", asset="USDT")
            await execute_one(session, NewTransfer(transfer_id, house.id, player.id, 5, "USDT", "funding"))
        async with sessions() as session:
            unpublished = await session.scalar(
                text("SELECT count(*) FROM outbox WHERE subject = :s AND published_at IS NULL"), {"s": str(transfer_id)}
            )
        assert unpublished == 1
        event = await _receive(queue, str(transfer_id))
        assert event.data["transfer_id"] == str(transfer_id)


@pytest.fixture
async def consumer(
    client: AsyncTestClient, settings: WalletSettings, sessions: async_sessionmaker[AsyncSession], amqp_names: AmqpNames
) -> AsyncIterator[Consumer]:
    """The wallet's handlers on this test's own queues."""
    consumer = Consumer(settings, sessions, MESSAGING, queues=amqp_names.service_queues("wallet"), retry_delay=0.1)
    for event_type, handler in HANDLERS.items():
        consumer.handler(event_type)(handler)
    await consumer.start()
    yield consumer
    await consumer.stop()


async def _publish(amqp_names: AmqpNames, event: CloudEvent) -> None:
    connection = await aio_pika.connect(amqp_names.url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.declare_exchange(amqp_names.exchange, aio_pika.ExchangeType.TOPIC, durable=True)
        await exchange.publish(
            signed_message(msgspec.json.encode(event), message_id=str(event.id)), routing_key=event.type
        )


def _event(type_: str, data: dict[str, Any]) -> CloudEvent:
    # The type's publisher as its source: consumers dead-letter any other as forged.
    return CloudEvent(
        id=uuid.uuid4(), source=source_of(type_), type=type_, time=datetime.now(UTC), subject="x", data=data
    )


async def test_a_redelivered_deposit_credits_once(
    consumer: Consumer, api: Any, sessions: async_sessionmaker[AsyncSession], amqp_names: AmqpNames
) -> None:
    player_id = uuid.uuid4()
    facts = {"chain_id": 31337, "tx_hash": "0x" + "ab" * 32, "log_index": 3, "player_id": str(player_id)}
    deposit = _event("blockchain.deposit_confirmed", {**facts, "asset": "USDT", "amount": "250000000"})
    await _publish(amqp_names, deposit)
    await _publish(amqp_names, deposit)  # the same message again (a redelivery)
    # The same on-chain deposit in a new envelope (a republish by the blockchain service): still once.
    await _publish(
        amqp_names, _event("blockchain.deposit_confirmed", {**facts, "asset": "USDT", "amount": "250000000"})
    )
    marker = _event("player.registered", {"player_id": str(uuid.uuid4())})
    await _publish(amqp_names, marker)

    async def handled() -> bool:
        async with sessions() as session:
            count = await session.scalar(text("SELECT count(*) FROM inbox WHERE event_id = :id"), {"id": marker.id})
        return bool(count)

    await eventually(handled, within_s=60, every_s=0.05)
    await asyncio.sleep(0.3)
    accounts = await api.client.get(f"/internal/v1/accounts?owner=player:{player_id}", headers=internal())
    (account,) = accounts.json()
    assert account["balance"]["balance"] == "250000000"
    async with sessions() as session:
        transfers = await session.scalar(
            text("SELECT count(*) FROM transfers WHERE id = :id"),
            {"id": deposit_transfer_id(31337, facts["tx_hash"], 3)},
        )
    assert transfers == 1


async def test_withdrawal_settlement_posts_or_voids_the_hold(
    consumer: Consumer, api: Any, amqp_names: AmqpNames
) -> None:
    player = await api.player()
    await api.fund(player, 1_000)
    # A chain of its own: other tests' deposits move chain 31337's clearing account.
    clearing = await api.open(f"chain:{uuid.uuid4().int % 10**12}", "chain_clearing")
    holds = []
    for amount in (300, 200):
        response = await api.transfer(player, clearing, amount, pending=True, code="withdrawal")
        assert response.status_code == 201
        holds.append(response.json()["id"])
    confirmed = _event("blockchain.withdrawal_confirmed", {"withdrawal_id": str(uuid.uuid4()), "transfer_id": holds[0]})
    await _publish(amqp_names, confirmed)
    await _publish(amqp_names, confirmed)  # redelivered: posted once
    await _publish(
        amqp_names,
        _event("blockchain.withdrawal_failed", {"withdrawal_id": str(uuid.uuid4()), "transfer_id": holds[1]}),
    )

    async def settled() -> bool:
        statuses = [
            (await api.client.get(f"/internal/v1/transfers/{h}", headers=internal())).json()["status"] for h in holds
        ]
        return statuses == ["posted", "voided"]

    await eventually(settled, within_s=60, every_s=0.05)
    await asyncio.sleep(0.3)
    balance = await api.balance(player["id"])
    assert balance["balance"] == 700
    assert balance["debits_pending"] == 0
    assert (await api.balance(clearing["id"]))["balance"] == 300


async def test_rakeback_payout_pays_from_the_pool(consumer: Consumer, api: Any, amqp_names: AmqpNames) -> None:
    player_id = uuid.uuid4()
    payout = {"payout_id": str(uuid.uuid4()), "player_id": str(player_id), "asset": "USDT", "amount": "42"}
    await _publish(amqp_names, _event("rakeback.payout_requested", payout))
    await _publish(amqp_names, _event("rakeback.payout_requested", payout))

    async def paid() -> bool:
        accounts = (await api.client.get(f"/internal/v1/accounts?owner=player:{player_id}", headers=internal())).json()
        return bool(accounts) and accounts[0]["balance"]["balance"] == "42"

    await eventually(paid, within_s=60, every_s=0.05)
    await asyncio.sleep(0.5)
    assert await paid()


async def _balance_of(api: Any, owner: str, kind: str) -> int:
    accounts = (await api.client.get(f"/internal/v1/accounts?owner={owner}", headers=internal())).json()
    return sum(int(a["balance"]["balance"]) for a in accounts if a["kind"] == kind and a["asset"] == "USDT")


async def test_a_club_payout_is_funded_from_the_house_rake_in_the_same_linked_batch(
    consumer: Consumer, api: Any, amqp_names: AmqpNames, sessions: async_sessionmaker[AsyncSession]
) -> None:
    club_id, payout_id = uuid.uuid4(), uuid.uuid4()
    house_before = await _balance_of(api, "house", "house_rake")
    payout = {
        "payout_id": str(payout_id),
        "beneficiary_kind": "club",
        "beneficiary_id": str(club_id),
        "asset": "USDT",
        "amount": "700",
    }
    # Two envelopes of the same fact: the inbox lets both in, the derived transfer ids pay once.
    await _publish(amqp_names, _event("rakeback.payout_requested", payout))
    await _publish(amqp_names, _event("rakeback.payout_requested", payout))

    async def paid() -> bool:
        return await _balance_of(api, f"club:{club_id}", "club") == 700

    await eventually(paid, within_s=60, every_s=0.05)
    await asyncio.sleep(0.5)
    assert await paid()
    assert await _balance_of(api, "house", "house_rake") == house_before - 700
    async with sessions() as session:
        codes = (
            await session.execute(
                text("SELECT code, flags FROM transfers WHERE metadata->>'payout_id' = :p ORDER BY code"),
                {"p": str(payout_id)},
            )
        ).all()
    assert [c for c, _ in codes] == ["rakeback_funding", "rakeback_payout"]


async def test_a_10_pow_24_wei_deposit_posting_and_withdrawal(
    consumer: Consumer, api: Any, amqp_names: AmqpNames
) -> None:
    """A million ETH in wei: past 64 bits in every amount, counter and event, and back exactly as strings."""
    wei, player_id, chain_id = 10**24, uuid.uuid4(), uuid.uuid4().int % 10**12
    facts = {"chain_id": chain_id, "tx_hash": "0x" + "cd" * 32, "log_index": 0, "player_id": str(player_id)}
    connection, queue = await _listen(amqp_names, "wallet.transfer_posted")
    async with connection:
        await _publish(
            amqp_names, _event("blockchain.deposit_confirmed", {**facts, "asset": "ETH", "amount": str(wei)})
        )
        event = await _receive(queue, str(deposit_transfer_id(chain_id, facts["tx_hash"], 0)))
        assert (event.data["amount"], event.data["asset"]) == ("1000000000000000000000000", "ETH")
        (player,) = (await api.client.get(f"/internal/v1/accounts?owner=player:{player_id}", headers=internal())).json()
        assert player["balance"]["balance"] == "1000000000000000000000000"

        # A posting: a buy-in held, then posted.
        pool = await api.open(f"tournament:{uuid.uuid4().hex[:8]}", "prize_pool", "ETH")
        hold = (await api.transfer(player, pool, 4 * 10**23, pending=True, code="buy_in")).json()
        posted = await api.client.post(f"/internal/v1/transfers/{hold['id']}/post", json={}, headers=internal())
        assert posted.json()["posted_amount"] == "400000000000000000000000"
        event = await _receive(queue, hold["id"])
        assert event.data["amount"] == "400000000000000000000000"

        # A withdrawal: the blockchain service's hold (player -> chain clearing), posted on confirmation.
        clearing = await api.open(f"chain:{chain_id}", "chain_clearing", "ETH")
        withdrawal = await api.transfer(player, clearing, 6 * 10**23 - 1, pending=True, code="withdrawal")
        assert withdrawal.status_code == 201, withdrawal.text
        transfer_id = withdrawal.json()["id"]
        confirmed = {"withdrawal_id": str(uuid.uuid4()), "transfer_id": transfer_id}
        await _publish(amqp_names, _event("blockchain.withdrawal_confirmed", confirmed))
        event = await _receive(queue, transfer_id)
        assert (event.data["status"], event.data["amount"]) == ("posted", "599999999999999999999999")

    account = await api.account(player["id"])
    assert account["balance"] == {
        "debits_pending": "0",
        "debits_posted": "999999999999999999999999",
        "credits_pending": "0",
        "credits_posted": "1000000000000000000000000",
        "balance": "1",
        "available": "1",
    }
    assert (await api.account(clearing["id"]))["balance"]["balance"] == "-400000000000000000000001"
    assert (await api.account(pool["id"]))["balance"]["balance"] == "400000000000000000000000"


@pytest.mark.parametrize("amount", [10**24, 1e3, "1e3", "5.0", " 5", "+5", "05", "5\n", str(2**128)])
async def test_a_consumed_amount_must_be_a_canonical_string(
    client: AsyncTestClient, sessions: async_sessionmaker[AsyncSession], amount: object
) -> None:
    """A deposit whose amount is not a canonical decimal string moves nothing (the consumer retries, then
    dead-letters it for a human)."""
    facts = {"chain_id": 1, "tx_hash": "0x" + "ef" * 32, "log_index": 0, "player_id": str(uuid.uuid4())}
    with pytest.raises((msgspec.ValidationError, ProblemError)):
        async with sessions() as session, session.begin():
            await HANDLERS["blockchain.deposit_confirmed"](
                session, _event("blockchain.deposit_confirmed", {**facts, "asset": "ETH", "amount": amount})
            )
