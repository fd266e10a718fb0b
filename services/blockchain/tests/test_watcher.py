"""The deposit watcher against a real anvil: detected at first sight, confirmed after N confirmations while
still canonical, once per (chain id, tx hash, log index); a reorganisation before N reverts, never credits."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from tablium_blockchain.db.models import WatchCursor
from tablium_blockchain.services.chain import Chain
from tablium_blockchain.services.watcher import Watcher

from tablium_kit.localchain import LocalChain

from .conftest import CONFIRMATIONS, Depositor, address_of


async def outbox_events(sessions: async_sessionmaker[AsyncSession], tx_hash: str) -> list[tuple[str, dict[str, Any]]]:
    """(type, data) of the events written for a transaction's deposits, in order."""
    async with sessions() as session:
        rows = await session.execute(
            text("SELECT type, envelope->'data' FROM outbox WHERE envelope->'data'->>'tx_hash' = :h ORDER BY seq"),
            {"h": tx_hash},
        )
        return [(row[0], row[1]) for row in rows]


async def catch_up(watcher: Watcher) -> None:
    while not (await watcher.poll()).caught_up:
        pass


def types(events: list[tuple[str, dict[str, Any]]]) -> list[str]:
    return [event_type.removeprefix("blockchain.") for event_type, _ in events]


async def test_usdt_deposit_is_detected_then_confirmed_once(
    client: AsyncTestClient[Litestar],
    chain: Chain,
    watcher: Watcher,
    depositor: Depositor,
    local_chain: LocalChain,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    player = str(uuid.uuid4())
    address = await address_of(client, player, "USDT")
    await catch_up(watcher)
    receipt = await depositor.usdt(address, 25_000_000)
    tx_hash = "0x" + bytes(receipt["transactionHash"]).hex()
    await catch_up(watcher)
    assert types(await outbox_events(sessions, tx_hash)) == ["deposit_detected"]

    local_chain.mine(CONFIRMATIONS - 2)  # one short
    await catch_up(watcher)
    assert types(await outbox_events(sessions, tx_hash)) == ["deposit_detected"]

    local_chain.mine(1)
    await catch_up(watcher)
    events = await outbox_events(sessions, tx_hash)
    assert types(events) == ["deposit_detected", "deposit_confirmed"]
    confirmed = events[1][1]
    # What the wallet's handler reads (docs/events/wallet-consumed.md).
    assert confirmed["chain_id"] == chain.chain_id
    assert confirmed["player_id"] == player
    assert confirmed["asset"] == "USDT"
    assert confirmed["amount"] == "25000000"
    assert confirmed["tx_hash"] == tx_hash
    assert confirmed["log_index"] == int(receipt["logs"][0]["logIndex"])

    # Later polls, and the same range scanned again from an old cursor (replayed logs), credit nothing more.
    local_chain.mine(3)
    async with sessions() as session, session.begin():
        await session.execute(update(WatchCursor).values(next_block=int(receipt["blockNumber"]) - 1))
    await catch_up(watcher)
    assert types(await outbox_events(sessions, tx_hash)) == ["deposit_detected", "deposit_confirmed"]


async def test_eth_deposit_is_confirmed_once_and_transfers_elsewhere_are_ignored(
    client: AsyncTestClient[Litestar],
    watcher: Watcher,
    depositor: Depositor,
    local_chain: LocalChain,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    player = str(uuid.uuid4())
    address = await address_of(client, player, "ETH")
    await catch_up(watcher)
    receipt = await depositor.eth(address, 3 * 10**17)
    elsewhere = await depositor.eth("0x" + "42" * 20, 10**17)
    tx_hash = "0x" + bytes(receipt["transactionHash"]).hex()
    local_chain.mine(CONFIRMATIONS)
    await catch_up(watcher)
    events = await outbox_events(sessions, tx_hash)
    assert types(events) == ["deposit_detected", "deposit_confirmed"]
    assert events[1][1]["asset"] == "ETH"
    assert events[1][1]["amount"] == str(3 * 10**17)
    assert events[1][1]["log_index"] == -1
    assert await outbox_events(sessions, "0x" + bytes(elsewhere["transactionHash"]).hex()) == []


async def test_a_reorg_before_n_confirmations_reverts_without_credit(
    client: AsyncTestClient[Litestar],
    watcher: Watcher,
    depositor: Depositor,
    local_chain: LocalChain,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    address = await address_of(client, str(uuid.uuid4()), "USDT")
    await depositor.fund(10_000_000)  # minted before the snapshot: the reorg takes only the deposit away
    await catch_up(watcher)
    snapshot = local_chain.rpc("evm_snapshot")
    receipt = await depositor.usdt(address, 7_000_000)
    tx_hash = "0x" + bytes(receipt["transactionHash"]).hex()
    await catch_up(watcher)
    assert types(await outbox_events(sessions, tx_hash)) == ["deposit_detected"]

    # The chain forgets the deposit's block and grows past it with other blocks.
    assert local_chain.rpc("evm_revert", snapshot) is True
    local_chain.mine(CONFIRMATIONS + 2)
    await catch_up(watcher)
    assert types(await outbox_events(sessions, tx_hash)) == ["deposit_detected", "deposit_reverted"]
    local_chain.mine(CONFIRMATIONS)
    await catch_up(watcher)
    assert types(await outbox_events(sessions, tx_hash)) == ["deposit_detected", "deposit_reverted"]


async def test_anvil_reorg_of_the_deposit_block_reverts_it(
    client: AsyncTestClient[Litestar],
    watcher: Watcher,
    depositor: Depositor,
    local_chain: LocalChain,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    address = await address_of(client, str(uuid.uuid4()), "ETH")
    await catch_up(watcher)
    receipt = await depositor.eth(address, 10**16)
    tx_hash = "0x" + bytes(receipt["transactionHash"]).hex()
    local_chain.mine(1)
    await catch_up(watcher)
    assert types(await outbox_events(sessions, tx_hash)) == ["deposit_detected"]
    # Replace the last two blocks (the deposit's and the one on it) with empty ones.
    local_chain.rpc("anvil_reorg", 2, [])
    await catch_up(watcher)
    assert types(await outbox_events(sessions, tx_hash)) == ["deposit_detected", "deposit_reverted"]
    local_chain.mine(CONFIRMATIONS + 1)
    await catch_up(watcher)
    assert types(await outbox_events(sessions, tx_hash)) == ["deposit_detected", "deposit_reverted"]


async def test_a_deposit_mined_again_after_a_reorg_is_credited_once(
    client: AsyncTestClient[Litestar],
    chain: Chain,
    watcher: Watcher,
    depositor: Depositor,
    local_chain: LocalChain,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    address = await address_of(client, str(uuid.uuid4()), "ETH")
    await catch_up(watcher)
    snapshot = local_chain.rpc("evm_snapshot")
    receipt = await depositor.eth(address, 2 * 10**16)
    tx_hash = "0x" + bytes(receipt["transactionHash"]).hex()
    raw = local_chain.rpc("eth_getRawTransactionByHash", tx_hash)
    await catch_up(watcher)
    local_chain.rpc("evm_revert", snapshot)
    local_chain.mine(2)
    # The same signed transaction lands again, in another block.
    assert local_chain.rpc("eth_sendRawTransaction", raw) == tx_hash
    await chain.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30)  # automined: its own block, then N + 1
    local_chain.mine(CONFIRMATIONS + 1)
    await catch_up(watcher)
    await catch_up(watcher)
    events = types(await outbox_events(sessions, tx_hash))
    assert events.count("deposit_confirmed") == 1, events
    assert events[-1] == "deposit_confirmed"
    async with sessions() as session:
        status = await session.scalar(text("SELECT status FROM deposits WHERE tx_hash = :h"), {"h": tx_hash})
    assert status == "confirmed"


async def test_a_reorg_deeper_than_n_after_the_credit_is_detected_and_reported(
    client: AsyncTestClient[Litestar],
    watcher: Watcher,
    depositor: Depositor,
    local_chain: LocalChain,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    address = await address_of(client, str(uuid.uuid4()), "USDT")
    await depositor.fund(5_000_000)
    await catch_up(watcher)
    snapshot = local_chain.rpc("evm_snapshot")
    receipt = await depositor.usdt(address, 5_000_000)
    tx_hash = "0x" + bytes(receipt["transactionHash"]).hex()
    local_chain.mine(CONFIRMATIONS)
    await catch_up(watcher)
    assert types(await outbox_events(sessions, tx_hash)) == ["deposit_detected", "deposit_confirmed"]

    # The credited deposit's block and N more are replaced by a longer chain without it.
    local_chain.rpc("evm_revert", snapshot)
    local_chain.mine(2 * CONFIRMATIONS + 2)
    await catch_up(watcher)
    events = await outbox_events(sessions, tx_hash)
    assert types(events) == ["deposit_detected", "deposit_confirmed", "deposit_reverted"]
    assert events[2][1]["was_confirmed"] is True
    await catch_up(watcher)
    assert len(await outbox_events(sessions, tx_hash)) == 3


async def test_a_log_duplicated_in_the_nodes_answer_is_one_deposit(
    client: AsyncTestClient[Litestar],
    chain: Chain,
    watcher: Watcher,
    depositor: Depositor,
    local_chain: LocalChain,
    sessions: async_sessionmaker[AsyncSession],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A node (or a provider behind a load balancer) that returns the same log twice in one answer: the
    deposit is stored and detected once, and confirmed once."""
    address = await address_of(client, str(uuid.uuid4()), "USDT")
    await catch_up(watcher)
    receipt = await depositor.usdt(address, 9_000_000)
    tx_hash = "0x" + bytes(receipt["transactionHash"]).hex()
    real_get_logs = chain.w3.eth.get_logs

    async def doubled(*args: Any, **kwargs: Any) -> Any:
        logs = list(await real_get_logs(*args, **kwargs))
        return logs + logs

    monkeypatch.setattr(chain.w3.eth, "get_logs", doubled)
    await catch_up(watcher)
    local_chain.mine(CONFIRMATIONS)
    await catch_up(watcher)
    assert types(await outbox_events(sessions, tx_hash)) == ["deposit_detected", "deposit_confirmed"]
    async with sessions() as session:
        stored = await session.scalar(text("SELECT count(*) FROM deposits WHERE tx_hash = :h"), {"h": tx_hash})
    assert stored == 1
