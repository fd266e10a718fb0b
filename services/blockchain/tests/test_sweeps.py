"""Sweeping deposits into the hot wallet against a real anvil: ETH directly, the token after the hot wallet
pays the address's gas; recorded, once; the gas paid to a deposit address is no deposit."""

from __future__ import annotations

import uuid

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from tablium_blockchain.services.chain import Chain, token_contract
from tablium_blockchain.services.sweeper import Sweeper
from tablium_blockchain.services.watcher import Watcher
from tablium_blockchain.settings import BlockchainSettings

from tablium_kit.localchain import LocalChain

from .conftest import CONFIRMATIONS, Depositor, address_of
from .test_watcher import catch_up


@pytest.fixture
def sweeper(chain: Chain, sessions: async_sessionmaker[AsyncSession], settings: BlockchainSettings) -> Sweeper:
    return Sweeper(chain, sessions, settings)


async def rows(sessions: async_sessionmaker[AsyncSession], sql: str, **params: object) -> list[tuple[object, ...]]:
    async with sessions() as session:
        return [tuple(row) for row in await session.execute(text(sql), params)]


async def test_usdt_and_eth_deposits_are_swept_once_into_the_hot_wallet(
    client: AsyncTestClient[Litestar],
    chain: Chain,
    watcher: Watcher,
    sweeper: Sweeper,
    depositor: Depositor,
    local_chain: LocalChain,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    player = str(uuid.uuid4())
    usdt_address, eth_address = await address_of(client, player, "USDT"), await address_of(client, player, "ETH")
    await catch_up(watcher)
    await depositor.usdt(usdt_address, 40_000_000)
    await depositor.eth(eth_address, 2 * 10**17)
    local_chain.mine(CONFIRMATIONS)
    await catch_up(watcher)
    token, hot = token_contract(chain), chain.master.hot_wallet().address
    hot_usdt = int(await token.functions.balanceOf(hot).call())
    hot_eth = int(await chain.w3.eth.get_balance(hot))

    await sweeper.run_once()  # opens both: the ETH sweep sent, the token's gas sent to its address
    await sweeper.run_once()  # the gas arrived (automine): the token sweep is sent
    local_chain.mine(CONFIRMATIONS)
    await sweeper.run_once()
    sweeps = await rows(sessions, "SELECT address, asset, amount, status, gas_tx_hash IS NOT NULL FROM sweeps")
    assert sorted((a, s, st, g) for a, s, _, st, g in sweeps) == sorted(
        [(usdt_address, "USDT", "confirmed", True), (eth_address, "ETH", "confirmed", False)]
    )
    assert int(await token.functions.balanceOf(usdt_address).call()) == 0
    assert int(await token.functions.balanceOf(hot).call()) == hot_usdt + 40_000_000
    eth_swept = next(int(amount) for _, asset, amount, _, _ in sweeps if asset == "ETH")  # type: ignore[call-overload]
    assert 0 < 2 * 10**17 - eth_swept < 10**15  # less only its gas
    assert int(await chain.w3.eth.get_balance(hot)) > hot_eth  # the ETH swept in outweighs the gas paid out

    # Nothing left worth sweeping: later passes open nothing; the gas sent to the address was no deposit.
    for _ in range(2):
        await sweeper.run_once()
    await catch_up(watcher)
    assert len(await rows(sessions, "SELECT id FROM sweeps")) == 2
    deposits = await rows(sessions, "SELECT asset FROM deposits WHERE player_id = :p", p=uuid.UUID(player))
    assert sorted(d[0] for d in deposits) == ["ETH", "USDT"]
    # Every transaction a sweep made is on record, signed before it was sent.
    purposes = await rows(sessions, "SELECT purpose FROM chain_txs WHERE sweep_id IS NOT NULL ORDER BY purpose")
    assert [p[0] for p in purposes] == ["sweep", "sweep", "sweep_gas"]
