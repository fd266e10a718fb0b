"""The expiry job against concurrent instances and concurrent posts: every hold is resolved exactly once."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from tablium_wallet.domain.errors import PendingTransferResolved
from tablium_wallet.services.accounts import open_account
from tablium_wallet.services.batch import execute, execute_one
from tablium_wallet.services.expiry import expire_due
from tablium_wallet.services.transfers import NewTransfer, Resolve, Result

HOLDS = 40
AMOUNT = 10


async def test_concurrent_expiry_and_posts_resolve_each_hold_once(sessions: async_sessionmaker[AsyncSession]) -> None:
    now = datetime.now(UTC)
    later = now + timedelta(seconds=61)
    async with sessions() as session, session.begin():
        house = await open_account(session, owner="house", kind="house_fees", asset="USDT")
        player = await open_account(session, owner=f"player:{uuid.uuid4()}", kind="player", asset="USDT")
        table = await open_account(session, owner=f"table:{uuid.uuid4().hex[:8]}", kind="table_escrow", asset="USDT")
        await execute_one(session, NewTransfer(uuid.uuid4(), house.id, player.id, HOLDS * AMOUNT, "USDT", "funding"))
        holds = [uuid.uuid4() for _ in range(HOLDS)]
        outcomes = await execute(
            session,
            [NewTransfer(h, player.id, table.id, AMOUNT, "USDT", "test", pending=True, timeout_s=60) for h in holds],
            now=now,
        )
        assert all(isinstance(o, Result) and o.created for o in outcomes)

    async def instance() -> int:
        # One expiry instance: small claims, until nothing is due.
        total = 0
        while expired := await expire_due(sessions, now=later, limit=7):
            total += expired
        return total

    async def post(hold: uuid.UUID) -> bool:
        # A post made before the timeout, committing while the expiry instances run.
        async with sessions() as session, session.begin():
            (outcome,) = await execute(session, [Resolve(hold, "post")], now=now)
        if isinstance(outcome, PendingTransferResolved):
            assert outcome.extra["status"] == "expired"
            return False
        assert isinstance(outcome, Result), outcome
        return True

    async with asyncio.timeout(60):
        results = await asyncio.gather(*(instance() for _ in range(3)), *(post(h) for h in holds[::2]))
    expired_count, posted = sum(results[:3]), sum(results[3:])
    assert expired_count + posted == HOLDS

    async with sessions() as session:
        resolutions = dict(
            (
                await session.execute(
                    text(
                        "SELECT t.id, count(r.id) FROM transfers t LEFT JOIN transfers r ON r.pending_id = t.id "
                        "WHERE t.id = ANY(CAST(:ids AS uuid[])) GROUP BY t.id"
                    ),
                    {"ids": holds},
                )
            ).all()
        )
        events = dict(
            (
                await session.execute(
                    text(
                        "SELECT subject, count(*) FROM outbox WHERE subject = ANY(CAST(:ids AS text[])) "
                        "AND type IN ('wallet.transfer_posted', 'wallet.transfer_voided') GROUP BY subject"
                    ),
                    {"ids": [str(h) for h in holds]},
                )
            ).all()
        )
        voided_as_expired = await session.scalar(
            text(
                "SELECT count(*) FROM outbox WHERE type = 'wallet.transfer_voided' "
                "AND envelope->'data'->>'status' = 'expired' AND subject = ANY(CAST(:ids AS text[]))"
            ),
            {"ids": [str(h) for h in holds]},
        )
        left = await session.scalar(
            text("SELECT count(*) FROM pending_transfers WHERE transfer_id = ANY(CAST(:ids AS uuid[]))"),
            {"ids": holds},
        )
        counters = (
            await session.execute(
                text("SELECT debits_pending, debits_posted, credits_posted FROM accounts WHERE id = :id"),
                {"id": player.id},
            )
        ).one()
    assert resolutions == dict.fromkeys(holds, 1)  # each hold resolved exactly once
    assert events == {str(h): 1 for h in holds}  # and announced exactly once
    assert voided_as_expired == expired_count
    assert left == 0
    assert tuple(counters) == (0, posted * AMOUNT, HOLDS * AMOUNT)


async def test_a_post_after_the_timeout_expires_the_hold_itself(sessions: async_sessionmaker[AsyncSession]) -> None:
    now = datetime.now(UTC)
    async with sessions() as session, session.begin():
        house = await open_account(session, owner="house", kind="house_fees", asset="USDT")
        player = await open_account(session, owner=f"player:{uuid.uuid4()}", kind="player", asset="USDT")
        await execute_one(session, NewTransfer(uuid.uuid4(), house.id, player.id, 50, "USDT", "funding"))
        hold = uuid.uuid4()
        await execute_one(
            session, NewTransfer(hold, player.id, house.id, 50, "USDT", "test", pending=True, timeout_s=5), now=now
        )
    async with sessions() as session, session.begin():
        (outcome,) = await execute(session, [Resolve(hold, "post")], now=now + timedelta(seconds=6))
    assert isinstance(outcome, PendingTransferResolved)
    # Expired by the post's own batch: the job finds nothing left to do.
    assert await expire_due(sessions, now=now + timedelta(seconds=7)) == 0
    async with sessions() as session:
        available = await session.scalar(
            text("SELECT credits_posted - debits_posted - debits_pending FROM accounts WHERE id = :id"),
            {"id": player.id},
        )
    assert available == 50
