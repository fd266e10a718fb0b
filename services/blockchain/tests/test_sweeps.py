"""Sweeping deposits into the hot wallet against a real anvil: ETH directly, the token after the hot wallet
pays the address's gas; recorded, once; the gas paid to a deposit address is no deposit; stuck sweep
transactions re-signed with higher fees (automine off), still swept once."""

from __future__ import annotations

import uuid

import msgspec
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from tablium_blockchain.services.chain import Chain, token_contract
from tablium_blockchain.services.fillers import Fillers
from tablium_blockchain.services.sweeper import Sweeper
from tablium_blockchain.services.watcher import Watcher
from tablium_blockchain.settings import BlockchainSettings

from tablium_kit.localchain import LocalChain

from .conftest import CONFIRMATIONS, Depositor, address_of, automined
from .test_watcher import catch_up


@pytest.fixture
def sweeper(chain: Chain, sessions: async_sessionmaker[AsyncSession], settings: BlockchainSettings) -> Sweeper:
    return Sweeper(chain, sessions, settings)


async def rows(sessions: async_sessionmaker[AsyncSession], sql: str, **params: object) -> list[tuple[object, ...]]:
    async with sessions() as session:
        return [tuple(row) for row in await session.execute(text(sql), params)]


async def confirmed_deposits(
    client: AsyncTestClient[Litestar],
    watcher: Watcher,
    depositor: Depositor,
    local_chain: LocalChain,
    player: str,
    usdt: int,
    eth: int = 0,
) -> tuple[str, str | None]:
    """The player's deposit addresses (ETH's only if ``eth``), paid and confirmed N blocks deep, and seen by
    the watcher: what a sweep picks up."""
    usdt_address = await address_of(client, player, "USDT")
    eth_address = await address_of(client, player, "ETH") if eth else None
    await catch_up(watcher)
    await depositor.usdt(usdt_address, usdt)
    if eth_address is not None:
        await depositor.eth(eth_address, eth)
    local_chain.mine(CONFIRMATIONS)
    await catch_up(watcher)
    return usdt_address, eth_address


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
    usdt_address, eth_address = await confirmed_deposits(
        client, watcher, depositor, local_chain, player, usdt=40_000_000, eth=2 * 10**17
    )
    token, hot = token_contract(chain), chain.master.hot_wallet().address
    hot_usdt = int(await token.functions.balanceOf(hot).call())
    hot_eth = int(await chain.w3.eth.get_balance(hot))

    await sweeper.run_once()  # opens both: the ETH sweep sent, the token's gas sent to its address
    await automined(chain, local_chain)  # the gas in a block before the pass that looks for it
    await sweeper.run_once()  # the gas arrived (automine): the token sweep is sent
    await automined(chain, local_chain)
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


async def test_stuck_sweeps_are_replaced_with_higher_fees_and_swept_once(
    client: AsyncTestClient[Litestar],
    chain: Chain,
    watcher: Watcher,
    depositor: Depositor,
    local_chain: LocalChain,
    sessions: async_sessionmaker[AsyncSession],
    settings: BlockchainSettings,
) -> None:
    """A stuck gas transfer holds every later nonce of the hot wallet: it is re-signed with higher fees, as are
    the address's sweeps (an ETH sweep sends less by the extra gas; a token sweep gets a gas top-up first)."""
    usdt_address, eth_address = await confirmed_deposits(
        client, watcher, depositor, local_chain, str(uuid.uuid4()), usdt=30_000_000, eth=3 * 10**17
    )
    token, hot = token_contract(chain), chain.master.hot_wallet().address
    hot_usdt = int(await token.functions.balanceOf(hot).call())
    eager = Sweeper(chain, sessions, msgspec.structs.replace(settings, replace_after_s=0))
    opened = "SELECT id FROM sweeps WHERE address = :a"
    versions = (
        "SELECT c.purpose, c.nonce, c.max_fee_per_gas FROM chain_txs c JOIN sweeps s ON s.id = c.sweep_id "
        "WHERE s.address = :a ORDER BY c.signed_at, c.purpose"
    )
    with local_chain.mining_held():
        await eager.run_once()  # opens both: the ETH sweep and the token's gas transfer wait in the mempool
        eth_amount = (await rows(sessions, "SELECT amount FROM sweeps WHERE address = :a", a=eth_address))[0][0]
        await eager.run_once()  # both stuck: re-signed at their nonces with higher fees
        eth_versions = await rows(sessions, versions, a=eth_address)
        assert [(p, n) for p, n, _ in eth_versions] == [("sweep", eth_versions[0][1])] * 2
        assert eth_versions[1][2] > eth_versions[0][2]  # type: ignore[operator]
        replaced_amount = (await rows(sessions, "SELECT amount FROM sweeps WHERE address = :a", a=eth_address))[0][0]
        assert replaced_amount < eth_amount  # type: ignore[operator]
        gas_versions = await rows(sessions, versions, a=usdt_address)
        assert [p for p, _, _ in gas_versions] == ["sweep", "sweep_gas", "sweep_gas"]
        assert gas_versions[1][1] == gas_versions[2][1]
        assert gas_versions[2][2] > gas_versions[1][2]  # type: ignore[operator]

        local_chain.mine(1)  # the replacements land
        await eager.run_once()  # the gas has arrived: the token sweep is sent
        await eager.run_once()  # stuck too: a gas top-up from the hot wallet, and the sweep re-signed
        token_versions = await rows(sessions, versions, a=usdt_address)
        assert [p for p, _, _ in token_versions].count("sweep") == 2
        assert [p for p, _, _ in token_versions].count("sweep_gas") == 3  # two versions and the top-up
        local_chain.mine(1)
        await eager.run_once()
        local_chain.mine(CONFIRMATIONS)
    # Automine back on: what the pool held, then what each pass sends, mined before the next pass looks (an
    # eager pass finding its own transaction not yet mined would re-sign it, and a token sweep wait a top-up).
    await automined(chain, local_chain)
    await eager.run_once()
    await automined(chain, local_chain)
    await eager.run_once()
    await automined(chain, local_chain)
    local_chain.mine(CONFIRMATIONS)
    await eager.run_once()
    statuses = await rows(
        sessions, "SELECT asset, status FROM sweeps WHERE address IN (:u, :e)", u=usdt_address, e=eth_address
    )
    assert sorted(statuses) == [("ETH", "confirmed"), ("USDT", "confirmed")]
    assert len(await rows(sessions, opened, a=usdt_address)) == 1
    assert int(await token.functions.balanceOf(usdt_address).call()) == 0
    assert int(await token.functions.balanceOf(hot).call()) == hot_usdt + 30_000_000  # once
    assert int(await chain.w3.eth.get_balance(eth_address)) < 10**15  # swept, less only gas


async def test_a_gas_transfer_the_node_keeps_refusing_fails_the_sweep_and_its_nonce_is_filled(
    client: AsyncTestClient[Litestar],
    chain: Chain,
    watcher: Watcher,
    depositor: Depositor,
    local_chain: LocalChain,
    sessions: async_sessionmaker[AsyncSession],
    settings: BlockchainSettings,
) -> None:
    """The hot wallet cannot pay a token sweep's gas any more (its ETH gone after signing): the sweep fails, a
    filler takes the hot wallet's nonce (so withdrawals behind it proceed), the address's nonce is freed, and
    once the hot wallet is funded a new sweep moves the tokens, once."""
    address, _ = await confirmed_deposits(client, watcher, depositor, local_chain, str(uuid.uuid4()), usdt=12_000_000)
    token, hot = token_contract(chain), chain.master.hot_wallet().address
    hot_usdt = int(await token.functions.balanceOf(hot).call())
    eth = int(await chain.w3.eth.get_balance(hot))
    strict = msgspec.structs.replace(settings, refusals_before_failing=2, refused_for_s_before_failing=0)
    sweeper = Sweeper(chain, sessions, strict)
    gas_sql = (
        "SELECT c.tx_hash, c.nonce FROM chain_txs c JOIN sweeps s ON s.id = c.sweep_id "
        "WHERE s.address = :a AND c.purpose = 'sweep_gas'"
    )
    with local_chain.mining_held():
        try:
            await sweeper.run_once()  # opened: the gas transfer waits in the mempool
            ((gas_hash, gas_nonce),) = await rows(sessions, gas_sql, a=address)
            local_chain.rpc("anvil_setBalance", hot, hex(0))
            local_chain.rpc("anvil_dropTransaction", gas_hash)
            for _ in range(3):  # sent again, refused twice, given up
                await sweeper.run_once()
            # (the same pass may open a new sweep of the address: its gas is refused too, for now)
            assert ("failed",) in await rows(sessions, "SELECT status FROM sweeps WHERE address = :a", a=address)
            fillers = await rows(
                sessions, "SELECT tx_hash FROM chain_txs WHERE purpose = 'filler' AND nonce = :n", n=gas_nonce
            )
            assert len(fillers) == 1
        finally:
            local_chain.rpc("anvil_setBalance", hot, hex(eth))
    await Fillers(chain, sessions, strict).follow()  # the sender's pass: the filler sent again, now paid for
    # anvil mines an automined transaction just after answering the send: wait for it rather than race it
    await chain.w3.eth.wait_for_transaction_receipt(fillers[0][0], timeout=10)
    assert int(await chain.w3.eth.get_transaction_count(hot)) == gas_nonce + 1

    await sweeper.run_once()  # a new sweep of the address, at the nonce the failed one freed
    await automined(chain, local_chain)  # its gas in a block before the pass that sends the token sweep
    await sweeper.run_once()
    await automined(chain, local_chain)
    local_chain.mine(CONFIRMATIONS)
    await sweeper.run_once()
    statuses = await rows(sessions, "SELECT status FROM sweeps WHERE address = :a ORDER BY created_at", a=address)
    assert statuses == [("failed",), ("confirmed",)]
    assert int(await token.functions.balanceOf(address).call()) == 0
    assert int(await token.functions.balanceOf(hot).call()) == hot_usdt + 12_000_000
