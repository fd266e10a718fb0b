"""64 concurrent clients on a few hot accounts, through three batching ledgers (as three instances would)
sharing one database: no lost update, no negative balance, no deadlock, nothing but insufficient funds."""

from __future__ import annotations

import asyncio
import random
import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from tablium_wallet.domain.errors import InsufficientFunds
from tablium_wallet.services.accounts import open_account
from tablium_wallet.services.batch import execute_one
from tablium_wallet.services.ledger import Ledger
from tablium_wallet.services.transfers import NewTransfer, Resolve

CLIENTS = 64
OPERATIONS_PER_CLIENT = 40
FUNDING = 5_000


async def test_many_writers_on_hot_accounts(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as session, session.begin():
        house = await open_account(session, owner="house", kind="house_fees", asset="USDT")
        players = [
            (await open_account(session, owner=f"player:{uuid.uuid4()}", kind="player", asset="USDT")).id
            for _ in range(4)
        ]
        table = (
            await open_account(session, owner=f"table:{uuid.uuid4().hex[:8]}", kind="table_escrow", asset="USDT")
        ).id
        for player in players:
            await execute_one(session, NewTransfer(uuid.uuid4(), house.id, player, FUNDING, "USDT", "funding"))
    hot = [*players, table]
    ledgers = [Ledger(sessions, max_batch=64) for _ in range(3)]
    for ledger in ledgers:
        await ledger.start()
    made = 0
    refused = 0
    rng = random.Random(7)

    async def client(n: int) -> None:
        nonlocal made, refused
        ledger = ledgers[n % len(ledgers)]
        for _ in range(OPERATIONS_PER_CLIENT):
            debit, credit = rng.sample(hot, 2)
            amount = rng.randint(1, 900)
            pending = rng.random() < 0.2
            try:
                result = await ledger.submit(NewTransfer(uuid.uuid4(), debit, credit, amount, "USDT", "load", pending))
                made += 1
                if pending:
                    hold = result.transfers[0]
                    action = rng.choice(["post", "void", "post_part"])
                    if action == "post_part":
                        await ledger.submit(Resolve(hold.id, "post", max(1, amount // 2)))
                    else:
                        await ledger.submit(Resolve(hold.id, action))  # type: ignore[arg-type]
                    made += 1
            except InsufficientFunds:
                refused += 1

    try:
        async with asyncio.timeout(60):
            await asyncio.gather(*(client(n) for n in range(CLIENTS)))
    finally:
        for ledger in ledgers:
            await ledger.stop()

    assert made > CLIENTS * OPERATIONS_PER_CLIENT // 2
    assert refused > 0  # the funds are scarce on purpose
    async with sessions() as session:
        counters = {
            row[0]: row[1:]
            for row in await session.execute(
                text(
                    "SELECT id, debits_pending, debits_posted, credits_pending, credits_posted FROM accounts "
                    "WHERE id = ANY(CAST(:ids AS uuid[]))"
                ),
                {"ids": hot},
            )
        }
        # Every account's counters are exactly the sums of its transfers (posted: single-phase and posts).
        derived = {
            row[0]: int(row[1])
            for row in await session.execute(
                text(
                    "SELECT a, sum(v) FROM (SELECT debit_account_id a, -amount v FROM transfers WHERE flags & 10 = 0 "
                    "UNION ALL SELECT credit_account_id, amount FROM transfers WHERE flags & 10 = 0) m "
                    "WHERE a = ANY(CAST(:ids AS uuid[])) GROUP BY a"
                ),
                {"ids": hot},
            )
        }
        transfers = (
            await session.execute(
                text("SELECT count(*) FROM transfers WHERE code = 'load'"),
            )
        ).scalar_one()
    total = 0
    for account in hot:
        dp, dpo, cp, cpo = counters[account]
        assert dp == 0
        assert cp == 0
        assert dpo <= cpo  # never negative
        assert cpo - dpo == derived.get(account, 0)
        total += cpo - dpo
    assert total == 4 * FUNDING  # nothing created or lost
    assert transfers == made


async def test_retries_racing_their_original_have_one_effect(sessions: async_sessionmaker[AsyncSession]) -> None:
    """The same transfer and the same post, sent again and again while the first is still in flight
    (so that later batches read before the first commits): made once, every other answer a replay."""
    async with sessions() as session, session.begin():
        house = await open_account(session, owner="house", kind="house_fees", asset="USDT")
        player = await open_account(session, owner=f"player:{uuid.uuid4()}", kind="player", asset="USDT")
        table = await open_account(session, owner=f"table:{uuid.uuid4().hex[:8]}", kind="table_escrow", asset="USDT")
    ledger = Ledger(sessions, max_batch=4)
    await ledger.start()
    funding = NewTransfer(uuid.uuid4(), house.id, player.id, 100, "USDT", "funding")
    hold = NewTransfer(uuid.uuid4(), player.id, table.id, 60, "USDT", "table_buy_in", pending=True)

    async def send(op: NewTransfer | Resolve, copies: int) -> list[bool]:
        futures = []
        for _ in range(copies):
            futures.append(ledger.submit_nowait(op))
            await asyncio.sleep(0)  # let the batcher start a batch between copies
        outcomes = await asyncio.gather(*futures)
        assert all(not isinstance(o, Exception) for o in outcomes), outcomes
        assert len({tuple(t.id for t in o.transfers) for o in outcomes}) == 1  # type: ignore[union-attr]
        return [o.created for o in outcomes]  # type: ignore[union-attr]

    try:
        async with asyncio.timeout(30):
            assert sorted(await send(funding, 40)) == [False] * 39 + [True]
            assert sorted(await send(hold, 40)) == [False] * 39 + [True]
            assert sorted(await send(Resolve(hold.id, "post", 45), 40)) == [False] * 39 + [True]
    finally:
        await ledger.stop()
    async with sessions() as session:
        counters = (
            await session.execute(
                text("SELECT debits_pending, debits_posted, credits_posted FROM accounts WHERE id = :id"),
                {"id": player.id},
            )
        ).one()
        transfers = await session.scalar(
            text("SELECT count(*) FROM transfers WHERE id = ANY(CAST(:ids AS uuid[])) OR pending_id = :hold"),
            {"ids": [funding.id, hold.id], "hold": hold.id},
        )
    assert tuple(counters) == (0, 45, 100)
    assert transfers == 3
