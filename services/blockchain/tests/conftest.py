"""A real blockchain service per test module: its own Postgres database, its own anvil node, RabbitMQ on the
run's test exchange. The watcher loop is off: tests drive it one poll at a time (``watcher`` fixture)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from tablium_blockchain.app import create_app
from tablium_blockchain.services.chain import Chain, connect, send, token_contract
from tablium_blockchain.services.runtime import ChainRuntime
from tablium_blockchain.services.watcher import Watcher
from tablium_blockchain.settings import BlockchainSettings

from tablium_kit import db
from tablium_kit.auth import StaticKeySource
from tablium_kit.localchain import DEV_MNEMONIC, LocalChain
from tablium_kit.messaging.testing import AmqpNames
from tablium_kit.service_processes import ServiceProcess, start_service, wallet_env
from tablium_kit.testing_tokens import AccessTokenIssuer

KID = "blockchain-test-key"
ISSUER = AccessTokenIssuer(KID)
SIGNING_KEY = ISSUER.key
CONFIRMATIONS = 3

Account.enable_unaudited_hdwallet_features()
# anvil's funded test account 1 (account 0 is the platform's hot wallet in development): the depositor.
DEPOSITOR: LocalAccount = Account.from_mnemonic(DEV_MNEMONIC, account_path="m/44'/60'/0'/0/1")


def bearer(subject: str, roles: list[str] | None = None) -> dict[str, str]:
    return ISSUER.bearer(subject, roles)


def blockchain_settings(database_url: str, chain: LocalChain, exchange: str, **extra: str) -> BlockchainSettings:
    return BlockchainSettings.from_env(
        "blockchain",
        {
            "TABLIUM_BLOCKCHAIN_DATABASE_URL": database_url,
            "TABLIUM_BLOCKCHAIN_RPC_URL": chain.url,
            "TABLIUM_BLOCKCHAIN_CONFIRMATIONS": str(CONFIRMATIONS),
            "TABLIUM_BLOCKCHAIN_WATCH": "false",
            # Sending and sweeping too are driven by the tests that need them (they share the hot wallet).
            "TABLIUM_BLOCKCHAIN_SEND": "false",
            "TABLIUM_BLOCKCHAIN_SWEEP": "false",
            "TABLIUM_BLOCKCHAIN_START_BLOCK": "0",
            "TABLIUM_EVENTS_EXCHANGE": exchange,
            "TABLIUM_ENVIRONMENT": "test",
            **extra,
        },
    )


@pytest.fixture(scope="module")
async def settings(
    make_database: Callable[[str], Awaitable[str]], amqp_names: AmqpNames, local_chain: LocalChain
) -> BlockchainSettings:
    return blockchain_settings(await make_database("blockchain"), local_chain, amqp_names.exchange)


async def connected(app: Litestar) -> ChainRuntime:
    """The app's chain runtime once it has connected (compiled and deployed the token)."""
    runtime: ChainRuntime = app.state.chain_runtime
    with anyio.fail_after(120):
        # The test client runs the app on a loop of its own: an asyncio.Event set there never wakes this one.
        while runtime.chain is None:  # noqa: ASYNC110
            await anyio.sleep(0.05)
    return runtime


@pytest.fixture(scope="module")
async def wallet_service(
    make_database: Callable[[str], Awaitable[str]], amqp_names: AmqpNames
) -> AsyncIterator[ServiceProcess]:
    """A real wallet (its own process and database) for the withdrawals' holds."""
    env = wallet_env(await make_database("chain_wallet"), amqp_names.exchange)
    service = await anyio.to_thread.run_sync(lambda: start_service("wallet", env, ready_path="/ready"))
    try:
        yield service
    finally:
        await anyio.to_thread.run_sync(service.stop)


@pytest.fixture(scope="module")
def app(settings: BlockchainSettings) -> Litestar:
    return create_app(settings, key_source=StaticKeySource({KID: SIGNING_KEY.public_key()}))


@pytest.fixture(scope="module")
async def client(app: Litestar) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(app=app) as test_client:
        await connected(app)
        yield test_client


@pytest.fixture(scope="module")
async def sessions(
    client: AsyncTestClient[Litestar], settings: BlockchainSettings
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on the service's migrated database, on the tests' own event loop."""
    engine = db.create_engine(settings.database_url, pool_size=5)
    yield db.session_factory(engine)
    await engine.dispose()


@pytest.fixture(scope="module")
async def chain(
    client: AsyncTestClient[Litestar], settings: BlockchainSettings, sessions: async_sessionmaker[AsyncSession]
) -> AsyncIterator[Chain]:
    """The chain as the service sees it, connected on the tests' loop (the test client runs the app on a
    loop of its own, and a web3 session belongs to one loop): the token is the one the app deployed."""
    runtime: ChainRuntime = client.app.state.chain_runtime
    chain = await connect(settings, sessions, runtime.master)
    yield chain
    await chain.close()


@pytest.fixture(scope="module")
def watcher(chain: Chain, sessions: async_sessionmaker[AsyncSession], settings: BlockchainSettings) -> Watcher:
    """The service's watcher, driven one poll at a time by the tests (the app runs no loop: watch=false)."""
    return Watcher(chain, sessions, settings)


class Depositor:
    """A player's side of a deposit: sends from anvil's funded test account (USDT minted to it first)."""

    def __init__(self, chain: Chain) -> None:
        self.chain = chain

    async def fund(self, amount: int) -> None:
        token = token_contract(self.chain)
        tx = await token.functions.mint(DEPOSITOR.address, amount).build_transaction(
            {"from": self.chain.master.hot_wallet().address}
        )
        await send(self.chain.w3, self.chain.master.hot_wallet(), {"to": tx["to"], "data": tx["data"]})

    async def usdt(self, to: str, amount: int) -> dict[str, Any]:
        await self.fund(amount)
        token = token_contract(self.chain)
        tx = await token.functions.transfer(to, amount).build_transaction({"from": DEPOSITOR.address})
        return await send(self.chain.w3, DEPOSITOR, {"to": tx["to"], "data": tx["data"]})

    async def eth(self, to: str, amount: int) -> dict[str, Any]:
        return await send(self.chain.w3, DEPOSITOR, {"to": to, "value": amount, "gas": 21_000})


@pytest.fixture
def depositor(chain: Chain) -> Depositor:
    return Depositor(chain)


async def automined(chain: Chain, local_chain: LocalChain) -> list[dict[str, Any]]:
    """The receipts of every transaction the node holds ready to mine, once mined (automine on).

    anvil answers a send before its miner has put the transaction in a block, so a read of the chain (a nonce
    count, a balance) or a pass that needs what the last pass sent to be mined, straight after a send, races the
    miner (a CI flake). Tests wait here for those very transactions instead (bounded by the timeout). Ones
    queued behind a nonce gap are not waited for: no block takes them until the gap is filled.
    """
    ready = local_chain.rpc("txpool_content")["pending"]
    hashes = [tx["hash"] for by_nonce in ready.values() for tx in by_nonce.values()]
    return [dict(await chain.w3.eth.wait_for_transaction_receipt(h, timeout=30)) for h in hashes]


async def address_of(client: AsyncTestClient[Litestar], player_id: str, asset: str = "USDT") -> str:
    response = await client.get("/api/v1/deposits/address", params={"asset": asset}, headers=bearer(player_id))
    assert response.status_code == 200, response.text
    address: str = response.json()["address"]
    return address
