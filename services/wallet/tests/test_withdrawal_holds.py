"""Withdrawal holds for the blockchain service, and a deposit a deep reorg took back (ADR 0010):
the credit is debited back even below zero, and a negative balance freezes the player's withdrawals."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from tablium_wallet.events.handlers import HANDLERS
from tablium_wallet.services.withdrawals import hold_id
from tablium_wallet.settings import WalletSettings

from tablium_kit.auth import ServiceTokens
from tablium_kit.messaging import CloudEvent
from tablium_kit.messaging.catalog import source_of
from tablium_kit.messaging.testing import AmqpNames

from .conftest import WalletApi, internal

CHAIN = 31337
BLOCKCHAIN = ServiceTokens.development("blockchain")
DAILY_LIMIT = 5_000


@pytest.fixture(scope="module")
async def settings(make_database: Callable[[str], Awaitable[str]], amqp_names: AmqpNames) -> WalletSettings:
    return WalletSettings.from_env(
        "wallet",
        {
            "TABLIUM_WALLET_DATABASE_URL": await make_database("wallet_withdrawals"),
            "TABLIUM_EVENTS_EXCHANGE": amqp_names.exchange,
            "TABLIUM_ENVIRONMENT": "test",
            "TABLIUM_WALLET_CONSUME_EVENTS": "false",
            "TABLIUM_WALLET_DAILY_WITHDRAWAL_LIMIT": f'{{"ETH": {DAILY_LIMIT}}}',
        },
    )


def _event(type_: str, data: dict[str, Any]) -> CloudEvent:
    return CloudEvent(
        id=uuid.uuid4(), source=source_of(type_), type=type_, time=datetime.now(UTC), subject="x", data=data
    )


async def handle(sessions: async_sessionmaker[AsyncSession], type_: str, data: dict[str, Any]) -> None:
    async with sessions() as session, session.begin():
        await HANDLERS[type_](session, _event(type_, data))


async def hold(
    client: AsyncTestClient, player: str, amount: int, *, asset: str = "USDT", withdrawal: str | None = None
) -> Any:
    body = {
        "withdrawal_id": withdrawal or str(uuid.uuid4()),
        "player_id": player,
        "chain_id": CHAIN,
        "asset": asset,
        "amount": str(amount),
        "address": "0x" + "ab" * 20,
    }
    return await client.post("/internal/v1/withdrawals/holds", json=body, headers=internal(tokens=BLOCKCHAIN))


def deposit(player: str, amount: int, asset: str = "USDT") -> dict[str, Any]:
    return {
        "chain_id": CHAIN,
        "tx_hash": "0x" + uuid.uuid4().hex * 2,
        "log_index": 0,
        "player_id": player,
        "asset": asset,
        "amount": str(amount),
    }


async def balance(api: WalletApi, player: str, asset: str = "USDT") -> dict[str, int]:
    account = await api.open(f"player:{player}", "player", asset)
    return await api.balance(account["id"])


async def test_a_hold_is_a_pending_transfer_to_chain_clearing_and_a_replay_gets_it(
    client: AsyncTestClient, api: WalletApi, sessions: async_sessionmaker[AsyncSession]
) -> None:
    player, withdrawal = str(uuid.uuid4()), str(uuid.uuid4())
    await handle(sessions, "blockchain.deposit_confirmed", deposit(player, 1_000))
    first = await hold(client, player, 600, withdrawal=withdrawal)
    assert first.status_code == 201, first.text
    body = first.json()
    assert body["id"] == str(hold_id(uuid.UUID(withdrawal)))
    assert (body["status"], body["code"], body["amount"]) == ("pending", "withdrawal", "600")
    again = await hold(client, player, 600, withdrawal=withdrawal)
    assert again.status_code == 200, again.text
    assert again.json()["id"] == body["id"]
    assert (await balance(api, player))["available"] == 400
    # More than is left: refused, nothing held.
    refused = await hold(client, player, 401)
    assert refused.status_code == 409, refused.text
    assert refused.json()["type"].endswith("insufficient-funds")
    # Only the blockchain service may ask.
    body = {**deposit(player, 1), "withdrawal_id": str(uuid.uuid4()), "address": "0x" + "ab" * 20}
    for key in ("tx_hash", "log_index"):
        body.pop(key)
    forbidden = await client.post("/internal/v1/withdrawals/holds", json=body, headers=internal())
    assert forbidden.status_code == 403, forbidden.text


async def test_the_daily_withdrawal_limit(
    client: AsyncTestClient, api: WalletApi, sessions: async_sessionmaker[AsyncSession]
) -> None:
    player = str(uuid.uuid4())
    await handle(sessions, "blockchain.deposit_confirmed", deposit(player, 10 * DAILY_LIMIT, "ETH"))
    assert (await hold(client, player, DAILY_LIMIT - 1, asset="ETH")).status_code == 201
    over = await hold(client, player, 2, asset="ETH")
    assert over.status_code == 403, over.text
    assert over.json()["limit"] == "daily_withdrawal_limit"
    assert (await hold(client, player, 1, asset="ETH")).status_code == 201
    # No limit on USDT here.
    await handle(sessions, "blockchain.deposit_confirmed", deposit(player, 10 * DAILY_LIMIT))
    assert (await hold(client, player, 10 * DAILY_LIMIT)).status_code == 201


async def test_a_deposit_reverted_after_credit_is_debited_back_below_zero_and_freezes_withdrawals(
    client: AsyncTestClient, api: WalletApi, sessions: async_sessionmaker[AsyncSession]
) -> None:
    player = str(uuid.uuid4())
    kept, lost = deposit(player, 300), deposit(player, 1_000)
    await handle(sessions, "blockchain.deposit_confirmed", kept)
    await handle(sessions, "blockchain.deposit_confirmed", lost)
    # A withdrawal is held, and part of the money is at a table, when the reorg takes the deposit away.
    pending = await hold(client, player, 200)
    assert pending.status_code == 201, pending.text
    table = await api.open(f"table:{uuid.uuid4().hex[:8]}", "table_escrow")
    account = await api.open(f"player:{player}", "player")
    assert (await api.transfer(account, table, 900)).status_code == 201

    # Reverted before credit: nothing to take back.
    await handle(sessions, "blockchain.deposit_reverted", {**deposit(player, 5), "was_confirmed": False})
    assert (await balance(api, player))["balance"] == 400
    reverted = {**lost, "was_confirmed": True}
    await handle(sessions, "blockchain.deposit_reverted", reverted)
    await handle(sessions, "blockchain.deposit_reverted", reverted)  # the same fact again moves nothing
    after = await balance(api, player)
    assert (after["balance"], after["available"]) == (-600, -800)

    # Frozen: no withdrawal in any asset, and nothing else may be debited either.
    for asset in ("USDT", "ETH"):
        frozen = await hold(client, player, 1, asset=asset)
        assert frozen.status_code == 403, frozen.text
        assert frozen.json()["type"].endswith("withdrawals-frozen")
    assert (await api.transfer(account, table, 1)).status_code == 409
    # The withdrawal already on its way is still posted when the chain confirms it.
    await handle(sessions, "blockchain.withdrawal_confirmed", {"withdrawal_id": str(uuid.uuid4()), **_id(pending)})
    assert (await balance(api, player))["balance"] == -800

    # Deposits cover the debt: withdrawals open again, for what is above zero.
    await handle(sessions, "blockchain.deposit_confirmed", deposit(player, 850))
    assert (await hold(client, player, 51)).status_code == 409
    assert (await hold(client, player, 50)).status_code == 201
    # Conservation: whatever happened, every asset's accounts sum to zero.
    async with sessions() as session:
        sums = await session.execute(text("SELECT sum(credits_posted - debits_posted) FROM accounts GROUP BY asset"))
        assert {int(total) for (total,) in sums} == {0}


def _id(response: Any) -> dict[str, str]:
    return {"transfer_id": response.json()["id"]}


async def test_a_revert_before_its_credit_is_retried(sessions: async_sessionmaker[AsyncSession]) -> None:
    with pytest.raises(RuntimeError, match="not credited"):
        await handle(sessions, "blockchain.deposit_reverted", {**deposit(str(uuid.uuid4()), 5), "was_confirmed": True})
