"""End to end: a deposit on a real anvil credits the wallet; a withdrawal back is held by the wallet (a real
process), signed and sent by the blockchain service's own loops, confirmed after N blocks and posted by the
wallet's handler. Chip conservation: what arrived on chain minus what left it is the chain clearing account
(negated), and the player's balance. A withdrawal whose transaction the node keeps refusing is failed and the
wallet voids its hold; its nonce is filled."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
import pytest
from eth_account import Account
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from tablium_blockchain.app import create_app as blockchain_app
from tablium_blockchain.services.chain import connect, send, token_contract
from tablium_blockchain.services.runtime import ChainRuntime
from tablium_blockchain.settings import BlockchainSettings
from tablium_wallet.db.models import MESSAGING as WALLET_MESSAGING
from tablium_wallet.events.handlers import HANDLERS as WALLET_HANDLERS
from tablium_wallet.settings import WalletSettings

from tablium_kit import db
from tablium_kit.auth import StaticKeySource
from tablium_kit.localchain import LocalChain
from tablium_kit.messaging import Consumer
from tablium_kit.messaging.testing import AmqpNames
from tablium_kit.service_processes import WalletLedger, start_service, wallet_env

from .test_chain_deposits import BALANCE, KID, SIGNING_KEY, bearer, eventually, pay_usdt, scalar

CONFIRMATIONS = 3
USDT = 10**6


@pytest.fixture(scope="module")
async def services(
    make_database: Callable[[str], Awaitable[str]], amqp_names: AmqpNames, local_chain: LocalChain
) -> AsyncIterator[dict[str, Any]]:
    wallet_url = await make_database("e2e_w_wallet")
    wallet = await anyio.to_thread.run_sync(
        lambda: start_service("wallet", wallet_env(wallet_url, amqp_names.exchange), ready_path="/ready")
    )
    chain_settings = BlockchainSettings.from_env(
        "blockchain",
        {
            "TABLIUM_BLOCKCHAIN_DATABASE_URL": await make_database("e2e_w_blockchain"),
            "TABLIUM_BLOCKCHAIN_RPC_URL": local_chain.url,
            "TABLIUM_BLOCKCHAIN_CONFIRMATIONS": str(CONFIRMATIONS),
            "TABLIUM_BLOCKCHAIN_POLL_INTERVAL_S": "0.1",
            "TABLIUM_BLOCKCHAIN_SEND_INTERVAL_S": "0.1",
            "TABLIUM_BLOCKCHAIN_WALLET_URL": wallet.url,
            "TABLIUM_BLOCKCHAIN_SWEEP": "false",
            # A transaction the node refuses three times is given up at once (the last test).
            "TABLIUM_BLOCKCHAIN_REFUSALS_BEFORE_FAILING": "3",
            "TABLIUM_BLOCKCHAIN_REFUSED_FOR_S_BEFORE_FAILING": "0",
            "TABLIUM_EVENTS_EXCHANGE": amqp_names.exchange,
            "TABLIUM_ENVIRONMENT": "test",
        },
    )
    wallet_settings = WalletSettings.from_env(
        "wallet", {"TABLIUM_WALLET_DATABASE_URL": wallet_url, "TABLIUM_EVENTS_EXCHANGE": amqp_names.exchange}
    )
    client = AsyncTestClient(
        app=blockchain_app(chain_settings, key_source=StaticKeySource({KID: SIGNING_KEY.public_key()}))
    )
    wallet_engine = db.create_engine(wallet_url, pool_size=2)
    chain_engine = db.create_engine(chain_settings.database_url, pool_size=2)
    # The wallet's own handlers, on this test's queues (the wallet process consumes nothing shared).
    consumer = Consumer(
        wallet_settings,
        db.session_factory(wallet_engine),
        WALLET_MESSAGING,
        queues=amqp_names.service_queues("wallet"),
        retry_delay=0.1,
    )
    for event_type, handler in WALLET_HANDLERS.items():
        consumer.handler(event_type)(handler)
    try:
        async with client:
            await consumer.start()
            runtime: ChainRuntime = client.app.state.chain_runtime
            with anyio.fail_after(300):
                while runtime.chain is None:  # noqa: ASYNC110 - the app runs on a loop of its own
                    await anyio.sleep(0.05)
            chain = await connect(chain_settings, db.session_factory(chain_engine), runtime.master)
            yield {
                "client": client,
                "chain": chain,
                "wallet": wallet_engine,
                "blockchain": chain_engine,
                "wallet_url": wallet.url,
            }
            await chain.close()
            await consumer.stop()
    finally:
        await wallet_engine.dispose()
        await chain_engine.dispose()
        await anyio.to_thread.run_sync(wallet.stop)


async def mine_until(local_chain: LocalChain, check: Callable[[], Awaitable[bool]]) -> None:
    with anyio.fail_after(180):
        while not await check():
            local_chain.mine(1)
            await anyio.sleep(0.2)


async def test_deposit_then_withdraw_back_conserves_money(services: dict[str, Any], local_chain: LocalChain) -> None:
    client, chain, wallet = services["client"], services["chain"], services["wallet"]
    player = str(uuid.uuid4())
    owner = f"player:{player}"
    address = (await client.get("/api/v1/deposits/address", params={"asset": "USDT"}, headers=bearer(player))).json()
    await pay_usdt(chain, address["address"], 100 * USDT)

    async def credited() -> bool:
        return bool(await scalar(wallet, BALANCE, owner=owner) == 100 * USDT)

    await mine_until(local_chain, credited)
    # The hot wallet pays withdrawals (until sweeping brings the deposits in): funded by the token's owner.
    hot = chain.master.hot_wallet()
    mint = await token_contract(chain).functions.mint(hot.address, 40 * USDT).build_transaction({"from": hot.address})
    await send(chain.w3, hot, {"to": mint["to"], "data": mint["data"]})

    to = Account.create().address
    response = await client.post(
        "/api/v1/withdrawals",
        json={"address": to, "asset": "USDT", "amount": str(40 * USDT)},
        headers={**bearer(player), "Idempotency-Key": "back-home"},
    )
    assert response.status_code == 201, response.text

    async def posted() -> bool:
        return bool(await scalar(wallet, BALANCE, owner=owner) == 60 * USDT)

    await mine_until(local_chain, posted)
    assert int(await token_contract(chain).functions.balanceOf(to).call()) == 40 * USDT
    status = await scalar(
        services["blockchain"], "SELECT status FROM withdrawals WHERE player_id = :p", p=uuid.UUID(player)
    )
    assert status == "confirmed"
    # Conservation: on-chain deposits (100) - on-chain withdrawals (40) = -chain clearing = the player's 60.
    assert await scalar(wallet, BALANCE, owner=f"chain:{chain.chain_id}") == -60 * USDT
    pending = "SELECT count(*) FROM pending_transfers"
    assert await scalar(wallet, pending) == 0


async def test_a_reorg_deeper_than_n_takes_the_credit_back_and_freezes_withdrawals(
    services: dict[str, Any], local_chain: LocalChain
) -> None:
    """ADR 0010's policy end to end: the watcher reports the credited deposit gone, the wallet debits it back
    past zero (the player had staked part of it), and the player's withdrawals are refused while negative."""
    client, chain, wallet = services["client"], services["chain"], services["wallet"]
    player = str(uuid.uuid4())
    owner = f"player:{player}"
    address = (await client.get("/api/v1/deposits/address", params={"asset": "USDT"}, headers=bearer(player))).json()
    snapshot = local_chain.rpc("evm_snapshot")
    await pay_usdt(chain, address["address"], 30 * USDT)

    async def credited() -> bool:
        return bool(await scalar(wallet, BALANCE, owner=owner) == 30 * USDT)

    await mine_until(local_chain, credited)
    ledger = WalletLedger(services["wallet_url"], "lobby")
    try:
        player_account = await ledger.account(owner, "player")
        table = await ledger.account(f"table:{uuid.uuid4().hex[:8]}", "table_escrow")
        stake = {
            "id": str(uuid.uuid4()),
            "debit_account_id": player_account,
            "credit_account_id": table,
            "amount": str(10 * USDT),
            "asset": "USDT",
            "code": "buy_in",
        }
        staked = await ledger.http.post("/internal/v1/transfers", json=stake, headers=ledger.headers())
        assert staked.status_code == 201, staked.text
    finally:
        await ledger.aclose()

    # The deposit's block and more than N on it are replaced by a longer chain without it.
    assert local_chain.rpc("evm_revert", snapshot) is True
    local_chain.mine(2 * CONFIRMATIONS + 2)

    async def taken_back() -> bool:
        return bool(await scalar(wallet, BALANCE, owner=owner) == -10 * USDT)

    await mine_until(local_chain, taken_back)
    refused = await client.post(
        "/api/v1/withdrawals",
        json={"address": Account.create().address, "asset": "ETH", "amount": str(10**16)},
        headers={**bearer(player), "Idempotency-Key": "while-negative"},
    )
    assert refused.status_code == 409, refused.text
    assert refused.json()["reason"] == "withdrawals-frozen"


async def test_a_withdrawal_the_node_keeps_refusing_is_failed_and_the_wallet_voids_its_hold(
    services: dict[str, Any], local_chain: LocalChain
) -> None:
    """The hot wallet's ETH is gone after the withdrawal was signed (the node answers "insufficient funds" to
    every broadcast): the service gives it up (withdrawal_failed), the wallet voids the hold, the player has
    all the money back, nothing left the chain clearing account, and a filler takes the nonce."""
    client, chain, wallet = services["client"], services["chain"], services["wallet"]
    player = str(uuid.uuid4())
    owner = f"player:{player}"
    address = (await client.get("/api/v1/deposits/address", params={"asset": "USDT"}, headers=bearer(player))).json()
    await pay_usdt(chain, address["address"], 20 * USDT)

    async def credited() -> bool:
        return bool(await scalar(wallet, BALANCE, owner=owner) == 20 * USDT)

    await mine_until(local_chain, credited)
    hot = chain.master.hot_wallet()
    mint = await token_contract(chain).functions.mint(hot.address, 8 * USDT).build_transaction({"from": hot.address})
    await send(chain.w3, hot, {"to": mint["to"], "data": mint["data"]})
    clearing = await scalar(wallet, BALANCE, owner=f"chain:{chain.chain_id}")
    eth = int(await chain.w3.eth.get_balance(hot.address))
    status_sql = "SELECT status, tx_hash, nonce FROM withdrawals WHERE player_id = :p"

    async def withdrawal() -> Any:
        async with services["blockchain"].connect() as connection:
            return (await connection.execute(text(status_sql), {"p": uuid.UUID(player)})).one_or_none()

    with local_chain.mining_held():
        try:
            response = await client.post(
                "/api/v1/withdrawals",
                json={"address": Account.create().address, "asset": "USDT", "amount": str(8 * USDT)},
                headers={**bearer(player), "Idempotency-Key": "refused-for-good"},
            )
            assert response.status_code == 201, response.text

            async def sent() -> bool:
                found = await withdrawal()
                return found is not None and found.status == "sent"

            await eventually(sent)
            _, tx_hash, nonce = await withdrawal()
            local_chain.rpc("anvil_setBalance", hot.address, hex(0))
            local_chain.rpc("anvil_dropTransaction", tx_hash)

            async def failed() -> bool:
                return bool((await withdrawal()).status == "failed")

            await eventually(failed)
        finally:
            local_chain.rpc("anvil_setBalance", hot.address, hex(eth))

    async def voided() -> bool:
        held = "SELECT debits_pending FROM accounts WHERE owner = :owner AND asset = 'USDT'"
        return bool(await scalar(wallet, held, owner=owner) == 0)

    await eventually(voided)
    assert await scalar(wallet, BALANCE, owner=owner) == 20 * USDT
    assert await scalar(wallet, BALANCE, owner=f"chain:{chain.chain_id}") == clearing  # nothing left on chain

    async def filled() -> bool:
        return int(await chain.w3.eth.get_transaction_count(hot.address)) > nonce

    await mine_until(local_chain, filled)
    purpose = await scalar(
        services["blockchain"],
        "SELECT purpose FROM chain_txs WHERE nonce = :n AND sender = :s AND purpose = 'filler'",
        n=nonce,
        s=hot.address,
    )
    assert purpose == "filler"
