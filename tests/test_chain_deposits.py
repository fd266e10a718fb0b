"""End to end: a token transfer on a real anvil reaches the player's wallet balance, once.

The blockchain service runs with its watcher loop (chain -> watcher -> outbox -> relay -> RabbitMQ) and the
wallet consumes ``blockchain.deposit_confirmed`` with its own handlers on this test's queues. The deposit is
credited once N blocks are on it; rescanning the same blocks and redelivering the event credit nothing more,
and the chain clearing account mirrors what arrived on chain.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from tablium_blockchain import events as chain_events
from tablium_blockchain.app import create_app as blockchain_app
from tablium_blockchain.services.chain import Chain, connect, send, token_contract
from tablium_blockchain.services.runtime import ChainRuntime
from tablium_blockchain.settings import BlockchainSettings
from tablium_wallet.app import create_app as wallet_app
from tablium_wallet.db.models import MESSAGING as WALLET_MESSAGING
from tablium_wallet.events.handlers import HANDLERS as WALLET_HANDLERS
from tablium_wallet.settings import WalletSettings

from tablium_kit import db
from tablium_kit.auth import StaticKeySource
from tablium_kit.localchain import DEV_MNEMONIC, LocalChain
from tablium_kit.messaging import Consumer
from tablium_kit.messaging.testing import AmqpNames
from tablium_kit.testing_tokens import AccessTokenIssuer
from tablium_kit.waiting import eventually

KID = "chain-e2e-key"
ISSUER = AccessTokenIssuer(KID)
SIGNING_KEY = ISSUER.key
CONFIRMATIONS = 3

Account.enable_unaudited_hdwallet_features()
DEPOSITOR: LocalAccount = Account.from_mnemonic(DEV_MNEMONIC, account_path="m/44'/60'/0'/0/2")


def bearer(subject: str) -> dict[str, str]:
    return ISSUER.bearer(subject)


@pytest.fixture(scope="module")
async def services(
    make_database: Callable[[str], Awaitable[str]], amqp_names: AmqpNames, local_chain: LocalChain
) -> AsyncIterator[dict[str, Any]]:
    chain_settings = BlockchainSettings.from_env(
        "blockchain",
        {
            "TABLIUM_BLOCKCHAIN_DATABASE_URL": await make_database("e2e_blockchain"),
            "TABLIUM_BLOCKCHAIN_RPC_URL": local_chain.url,
            "TABLIUM_BLOCKCHAIN_CONFIRMATIONS": str(CONFIRMATIONS),
            "TABLIUM_BLOCKCHAIN_POLL_INTERVAL_S": "0.1",
            # No sweeps here: they would pay gas from the hot wallet while the test mints from it.
            "TABLIUM_BLOCKCHAIN_SWEEP": "false",
            "TABLIUM_EVENTS_EXCHANGE": amqp_names.exchange,
            "TABLIUM_ENVIRONMENT": "test",
        },
    )
    wallet_settings = WalletSettings.from_env(
        "wallet",
        {
            "TABLIUM_WALLET_DATABASE_URL": await make_database("e2e_wallet"),
            "TABLIUM_EVENTS_EXCHANGE": amqp_names.exchange,
            "TABLIUM_ENVIRONMENT": "test",
            "TABLIUM_WALLET_CONSUME_EVENTS": "false",  # its handlers run below, on this test's queues
        },
    )
    keys = StaticKeySource({KID: SIGNING_KEY.public_key()})
    chain_client = AsyncTestClient(app=blockchain_app(chain_settings, key_source=keys))
    wallet_client = AsyncTestClient(app=wallet_app(wallet_settings, key_source=keys))
    async with chain_client, wallet_client:
        wallet_engine = db.create_engine(wallet_settings.database_url, pool_size=2)
        chain_engine = db.create_engine(chain_settings.database_url, pool_size=2)
        consumer = Consumer(
            wallet_settings,
            db.session_factory(wallet_engine),
            WALLET_MESSAGING,
            queues=amqp_names.service_queues("wallet"),
            retry_delay=0.1,
        )
        for event_type, handler in WALLET_HANDLERS.items():
            consumer.handler(event_type)(handler)
        await consumer.start()
        runtime: ChainRuntime = chain_client.app.state.chain_runtime
        with anyio.fail_after(300):
            # The test client runs the app on a loop of its own: poll, an asyncio.Event would not wake us.
            while runtime.chain is None:  # noqa: ASYNC110
                await anyio.sleep(0.05)
        # The same chain, on this test's loop (a web3 session belongs to one loop).
        chain = await connect(chain_settings, db.session_factory(chain_engine), runtime.master)
        try:
            yield {"client": chain_client, "chain": chain, "wallet": wallet_engine, "blockchain": chain_engine}
        finally:
            await chain.close()
            await consumer.stop()
            await wallet_engine.dispose()
            await chain_engine.dispose()


async def pay_usdt(chain: Chain, to: str, amount: int) -> str:
    token, hot = token_contract(chain), chain.master.hot_wallet()
    mint = await token.functions.mint(DEPOSITOR.address, amount).build_transaction({"from": hot.address})
    await send(chain.w3, hot, {"to": mint["to"], "data": mint["data"]})
    transfer = await token.functions.transfer(to, amount).build_transaction({"from": DEPOSITOR.address})
    receipt = await send(chain.w3, DEPOSITOR, {"to": transfer["to"], "data": transfer["data"]})
    return "0x" + bytes(receipt["transactionHash"]).hex()


async def scalar(engine: AsyncEngine, sql: str, **params: Any) -> Any:
    async with engine.connect() as connection:
        return await connection.scalar(text(sql), params)


BALANCE = "SELECT credits_posted - debits_posted FROM accounts WHERE owner = :owner AND asset = 'USDT'"
DEPOSIT_TRANSFERS = "SELECT count(*) FROM transfers WHERE code = 'deposit' AND metadata->>'tx_hash' = :tx"


async def test_a_usdt_transfer_on_chain_credits_the_wallet_once(
    services: dict[str, Any], local_chain: LocalChain
) -> None:
    client, chain, wallet = services["client"], services["chain"], services["wallet"]
    player = str(uuid.uuid4())
    response = await client.get("/api/v1/deposits/address", params={"asset": "USDT"}, headers=bearer(player))
    assert response.status_code == 200, response.text
    tx_hash = await pay_usdt(chain, response.json()["address"], 125_000_000)

    # Seen, but not credited before N confirmations.
    async def detected() -> bool:
        found = await scalar(services["blockchain"], "SELECT status FROM deposits WHERE tx_hash = :tx", tx=tx_hash)
        return found is not None

    await eventually(detected)
    assert await scalar(wallet, DEPOSIT_TRANSFERS, tx=tx_hash) == 0

    local_chain.mine(CONFIRMATIONS)

    async def credited() -> bool:
        return bool(await scalar(wallet, BALANCE, owner=f"player:{player}") == 125_000_000)

    await eventually(credited)
    assert await scalar(wallet, DEPOSIT_TRANSFERS, tx=tx_hash) == 1

    # The watcher scans the same blocks again from an old cursor: the deposit is known, nothing more moves.
    async with services["blockchain"].begin() as connection:
        await connection.execute(text("UPDATE watch_cursors SET next_block = 0"))
    local_chain.mine(CONFIRMATIONS)

    async def rescanned() -> bool:
        next_block = await scalar(services["blockchain"], "SELECT next_block FROM watch_cursors")
        return bool(next_block > local_chain.block_number())

    await eventually(rescanned)
    assert await scalar(wallet, DEPOSIT_TRANSFERS, tx=tx_hash) == 1
    assert await scalar(wallet, BALANCE, owner=f"player:{player}") == 125_000_000
    # Conservation: the chain clearing account gave exactly what arrived on chain.
    clearing = await scalar(wallet, BALANCE, owner=f"chain:{chain.chain_id}")
    assert clearing == -125_000_000
    confirmed = await scalar(
        services["blockchain"], "SELECT count(*) FROM outbox WHERE type = 'blockchain.deposit_confirmed'"
    )
    assert confirmed == 1


async def test_an_eth_transfer_credits_once_even_when_its_event_is_published_again(
    services: dict[str, Any], local_chain: LocalChain
) -> None:
    """ETH, end to end; then the confirmed event is published again as it was (the wallet's inbox skips the
    same event id) and as a new envelope of the same fact (the credit's id comes from the chain facts)."""
    client, chain, wallet = services["client"], services["chain"], services["wallet"]
    blockchain = services["blockchain"]
    player = str(uuid.uuid4())
    response = await client.get("/api/v1/deposits/address", params={"asset": "ETH"}, headers=bearer(player))
    assert response.status_code == 200, response.text
    receipt = await send(chain.w3, DEPOSITOR, {"to": response.json()["address"], "value": 2 * 10**17, "gas": 21_000})
    tx_hash = "0x" + bytes(receipt["transactionHash"]).hex()
    eth_balance = BALANCE.replace("'USDT'", "'ETH'")
    local_chain.mine(CONFIRMATIONS)

    async def credited() -> bool:
        return bool(await scalar(wallet, eth_balance, owner=f"player:{player}") == 2 * 10**17)

    await eventually(credited)
    async with blockchain.begin() as connection:
        data = await connection.scalar(
            text(
                "UPDATE outbox SET published_at = NULL WHERE type = 'blockchain.deposit_confirmed' "
                "AND envelope->'data'->>'tx_hash' = :tx RETURNING envelope->'data'"
            ),
            {"tx": tx_hash},
        )
    async with db.session_factory(blockchain)() as session, session.begin():
        subject = f"{data['chain_id']}:{tx_hash}:{data['log_index']}"
        again = await chain_events.outbox.add(session, type=chain_events.DEPOSIT_CONFIRMED, subject=subject, data=data)

    async def handled() -> bool:
        return bool(await scalar(wallet, "SELECT count(*) FROM inbox WHERE event_id = :e", e=again.id) == 1)

    await eventually(handled)  # published after the first copy's second publication
    assert await scalar(wallet, DEPOSIT_TRANSFERS, tx=tx_hash) == 1
    assert await scalar(wallet, eth_balance, owner=f"player:{player}") == 2 * 10**17
