"""The node goes away and comes back (the same chain): the watcher fails its polls without moving its cursor,
then resumes from it; nothing is missed or doubled."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from tablium_blockchain.services.watcher import Watcher

from tablium_kit.localchain import LocalChain

from .conftest import CONFIRMATIONS, Depositor, address_of
from .test_watcher import catch_up, outbox_events, types


@pytest.fixture(scope="module")
def local_chain() -> Iterator[LocalChain]:
    """This module's node keeps its chain across a stop and a start."""
    chain = LocalChain(persistent=True)
    try:
        chain.start()
        yield chain
    finally:
        chain.remove()


async def cursor(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as session:
        return int(await session.scalar(text("SELECT next_block FROM watch_cursors")) or 0)


async def test_the_watcher_resumes_from_its_cursor_after_the_node_returns(
    client: AsyncTestClient[Litestar],
    watcher: Watcher,
    depositor: Depositor,
    local_chain: LocalChain,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    address = await address_of(client, str(uuid.uuid4()), "USDT")
    await catch_up(watcher)
    first = "0x" + bytes((await depositor.usdt(address, 1_000_000))["transactionHash"]).hex()
    await catch_up(watcher)
    assert types(await outbox_events(sessions, first)) == ["deposit_detected"]
    before = await cursor(sessions)

    local_chain.stop()
    for _ in range(3):
        with pytest.raises(Exception):  # noqa: B017, PT011 - whatever the HTTP client says about a closed port
            await watcher.poll()
    assert await cursor(sessions) == before

    local_chain.start()
    second = "0x" + bytes((await depositor.usdt(address, 2_000_000))["transactionHash"]).hex()
    local_chain.mine(CONFIRMATIONS)
    await catch_up(watcher)
    await catch_up(watcher)
    assert types(await outbox_events(sessions, first)) == ["deposit_detected", "deposit_confirmed"]
    assert types(await outbox_events(sessions, second)) == ["deposit_detected", "deposit_confirmed"]
