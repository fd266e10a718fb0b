"""Paying a period: once, whoever runs it how often; tiers for public tables; completion on the wallet's posting."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from tablium_rakeback.domain.periods import period_of
from tablium_rakeback.services.scheduler import run_period
from tablium_rakeback.settings import RakebackSettings

from .conftest import assert_totals_are_the_hands, deal, deliver, event, hand, member

WEEK = period_of(datetime(2026, 10, 7, tzinfo=UTC), timedelta(days=7))  # Monday 2026-10-05 .. 10-12


async def _scalar(sessions: async_sessionmaker[AsyncSession], sql: str, **params: object) -> object:
    async with sessions() as session:
        return await session.scalar(text(sql), params)


async def test_a_period_is_paid_once_however_often_and_concurrently_it_runs(
    sessions: async_sessionmaker[AsyncSession], settings: RakebackSettings
) -> None:
    club, agent, player, public = uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    agents = [{"agent_id": str(agent), "parent_agent_id": None, "bps": 2000, "player_bps": 1000}]
    for fact in (
        member(club, agent, 1, role="agent"),
        member(club, player, 2, agent=agent),
        deal(club, 1, WEEK.start - timedelta(days=30), 3, club_bps=3000, player_bps=500, agents=agents),
    ):
        await deliver(sessions, fact)
    at = WEEK.start + timedelta(days=1)
    for n in range(5):
        await deliver(sessions, hand({player: 1000 + n}, at=at + timedelta(minutes=n), club_id=club))
        await deliver(sessions, hand({public: 2000}, at=at + timedelta(minutes=n)))
    # A hand after the period's end is the next period's.
    await deliver(sessions, hand({player: 5000}, at=WEEK.end + timedelta(hours=1), club_id=club))

    results = await asyncio.gather(*(run_period(sessions, settings, WEEK) for _ in range(3)))
    assert sorted(r.created for r in results) == [False, False, True]
    again = await run_period(sessions, settings, WEEK)
    assert not again.created

    requested = await _scalar(sessions, "SELECT count(*) FROM outbox WHERE type = 'rakeback.payout_requested'")
    assert requested == 4  # the club, the agent, the member, the public player
    async with sessions() as session:
        rows = (
            await session.execute(
                text("SELECT kind, beneficiary, amount FROM payouts WHERE period_start = :s"), {"s": WEEK.start}
            )
        ).all()
    payouts = {(kind, beneficiary): int(amount) for kind, beneficiary, amount in rows}
    rake = sum(1000 + n for n in range(5))  # 5010
    assert payouts[("agent", str(agent))] == sum((1000 + n) // 10 for n in range(5))  # 1000 bps each, to the unit
    assert payouts[("player", str(player))] == sum((1000 + n) // 10 for n in range(5))
    assert payouts[("player", str(public))] == 5 * 200  # bronze: 10%
    # 1000 bps of 1000..1004, and the units left by largest remainder: 1003 and 1004 leave one each to the club.
    assert payouts[("club", str(club))] == 5 * 100 + 2
    accrued = await _scalar(
        sessions,
        "SELECT sum(amount) FROM accrual_totals WHERE period_start = :s AND player_id IN (:p, :q)",
        s=WEEK.start,
        p=player,
        q=public,
    )
    assert accrued == rake + 5 * 2000  # every unit of rake accrued to someone, the platform included
    # Everything paid is exactly what was accrued before the end, and nothing after it.
    unpaid = await _scalar(
        sessions,
        "SELECT count(*) FROM accrual_totals WHERE payout_id IS NULL AND kind <> 'platform' AND period_start < :e",
        e=WEEK.end,
    )
    assert unpaid == 0
    later = await _scalar(
        sessions,
        "SELECT hands FROM accrual_totals WHERE payout_id IS NULL AND kind = 'player' AND player_id = :p",
        p=player,
    )
    assert later == 1
    assert await _scalar(sessions, "SELECT count(*) FROM rakes WHERE player_id = :p AND NOT paid", p=player) == 1
    await assert_totals_are_the_hands(sessions)
    tiers = await _scalar(
        sessions, "SELECT count(*) FROM outbox WHERE type = 'rakeback.tier_changed' AND subject = :p", p=str(public)
    )
    assert tiers == 1


async def test_a_payout_completes_once_on_the_wallets_posting(sessions: async_sessionmaker[AsyncSession]) -> None:
    payout_id = await _scalar(sessions, "SELECT payout_id FROM payouts WHERE kind = 'club' LIMIT 1")
    assert payout_id is not None
    posted = {
        "transfer_id": str(uuid.uuid4()),
        "code": "rakeback_payout",
        "metadata": {"payout_id": str(payout_id)},
        "amount": "1",
        "asset": "USDT",
    }
    funding = {**posted, "transfer_id": str(uuid.uuid4()), "code": "rakeback_funding"}
    for data in (funding, posted, posted):
        await deliver(sessions, event("wallet.transfer_posted", data))
    completed = await _scalar(
        sessions,
        "SELECT count(*) FROM outbox WHERE type = 'rakeback.payout_completed' AND subject = :p",
        p=str(payout_id),
    )
    assert completed == 1
    assert await _scalar(sessions, "SELECT status FROM payouts WHERE payout_id = :p", p=payout_id) == "completed"


async def test_the_cli_pays_one_period_by_hand_once(
    sessions: async_sessionmaker[AsyncSession], settings: RakebackSettings
) -> None:
    player = uuid.uuid4()
    day = datetime(2026, 8, 12, 9, tzinfo=UTC)
    await deliver(sessions, hand({player: 70_000}, at=day))
    env = {**os.environ, "TABLIUM_RAKEBACK_DATABASE_URL": settings.database_url, "TABLIUM_ENVIRONMENT": "test"}
    command = [str(Path(sys.executable).parent / "tablium-rakeback"), "pay-period", "--day", "2026-08-12"]
    first = await asyncio.to_thread(subprocess.run, command, env=env, capture_output=True, text=True, check=True)
    second = await asyncio.to_thread(subprocess.run, command, env=env, capture_output=True, text=True, check=True)
    assert "period 2026-08-10..2026-08-17: paid now, 1 payouts" in first.stdout
    assert "already paid, 1 payouts" in second.stdout
    amount = await _scalar(sessions, "SELECT amount FROM payouts WHERE beneficiary = :p", p=str(player))
    assert int(str(amount)) == 7_000  # bronze: 10%
    future = [*command[:-1], "2999-01-01"]
    refused = await asyncio.to_thread(subprocess.run, future, env=env, capture_output=True, text=True, check=False)
    assert refused.returncode != 0
    assert "has not ended" in refused.stderr
