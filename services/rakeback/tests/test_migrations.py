"""The migrations build exactly the models' schema, and amounts take 128 bits and no more."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import create_async_engine
from tablium_rakeback.app import MIGRATIONS
from tablium_rakeback.db.models import Base

from tablium_kit import migrations


def _differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


async def test_the_migrations_match_the_models(make_database: Callable[[str], Awaitable[str]]) -> None:
    url = await make_database("rakeback_migration")
    await anyio.to_thread.run_sync(migrations.upgrade, url, MIGRATIONS, "head")
    engine = create_async_engine(url)
    insert = text(
        "INSERT INTO accrual_totals (period_start, kind, beneficiary, player_id, asset, hands, rake, amount) "
        "VALUES (:t, :h, 'x', :p, 'ETH', 1, 0, :amount)"
    )
    try:
        async with engine.begin() as connection:
            assert await connection.run_sync(_differences) == []
            # Not compared by Alembic: the totals' pages are half full (HOT updates, d3f8a2b6c1e4).
            options = await connection.scalar(text("SELECT reloptions FROM pg_class WHERE relname = 'accrual_totals'"))
            assert options == ["fillfactor=50"]
            values = {"h": "player", "p": uuid.uuid4(), "amount": 2**128 - 1, "t": datetime.now(UTC)}
            await connection.execute(insert, values)
            # A paid tournament fee's reversal is negative (events/entry_fee_refunds.py).
            await connection.execute(insert, {**values, "h": "union", "amount": -(2**128 - 1)})
        with pytest.raises(IntegrityError):
            async with engine.begin() as connection:
                await connection.execute(insert, {**values, "h": "club", "amount": 2**128})
        with pytest.raises(IntegrityError):
            async with engine.begin() as connection:
                await connection.execute(insert, {**values, "h": "agent", "amount": -(2**128)})
    finally:
        await engine.dispose()


async def test_per_hand_accruals_become_totals_and_their_rakes_keep_what_splits_them(
    make_database: Callable[[str], Awaitable[str]],
) -> None:
    """b4e1f0a7c2d9: existing accrual rows are added up per period, receiver and paying player (paid and
    unpaid apart); each rake gets its period, the agent its parts were built from, and whether it was paid."""
    url = await make_database("rakeback_totals")
    await anyio.to_thread.run_sync(migrations.upgrade, url, MIGRATIONS, "60ddc13acdf3")
    club, agent, sub, player = (uuid.uuid4() for _ in range(4))
    hands = [uuid.uuid4() for _ in range(3)]
    payout = uuid.uuid4()
    monday = datetime(2026, 11, 2, tzinfo=UTC)  # a Monday: the week's start
    agents = (
        f'[{{"agent_id": "{agent}", "parent_agent_id": null, "bps": 2500, "player_bps": 1500}}, '
        f'{{"agent_id": "{sub}", "parent_agent_id": "{agent}", "bps": 2000, "player_bps": 1200}}]'
    )
    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.execute(
                text(
                    "INSERT INTO deals (club_id, version, effective_from, club_bps, player_bps, agents) "
                    "VALUES (:c, 1, :t, 3000, 1000, CAST(:a AS jsonb))"
                ),
                {"c": club, "t": monday, "a": agents},
            )
            for n, hand_id in enumerate(hands):
                at = monday + timedelta(days=n * 3)  # days 0 and 3: this week; day 6: this week too
                await connection.execute(
                    text(
                        "INSERT INTO rakes (hand_id, player_id, table_id, club_id, asset, rake, hand_time, status, "
                        "member_club_id, deal_version) VALUES (:h, :p, :h, :c, 'USDT', 1000, :t, 'accrued', :c, 1)"
                    ),
                    {"h": hand_id, "p": player, "c": club, "t": at},
                )
                parts = [("platform", "platform", 700), ("club", str(club), 50), ("agent", str(agent), 50)]
                parts += [("agent", str(sub), 80), ("player", str(player), 120)]
                for kind, beneficiary, amount in parts:
                    await connection.execute(
                        text(
                            "INSERT INTO accruals (hand_id, player_id, kind, beneficiary, asset, amount, bps, "
                            "hand_time, payout_id) VALUES (:h, :p, :k, :b, 'USDT', :a, 0, :t, :paid)"
                        ),
                        {
                            "h": hand_id,
                            "p": player,
                            "k": kind,
                            "b": beneficiary,
                            "a": amount,
                            "t": at,
                            "paid": payout if n == 0 and kind != "platform" else None,
                        },
                    )
        await anyio.to_thread.run_sync(migrations.upgrade, url, MIGRATIONS, "head")
        async with engine.begin() as connection:
            rakes = (
                await connection.execute(
                    text("SELECT hand_id, period_start, agent_id, paid FROM rakes ORDER BY hand_time")
                )
            ).all()
            totals = (
                await connection.execute(
                    text(
                        "SELECT kind, beneficiary, payout_id, hands, rake, amount FROM accrual_totals "
                        "WHERE kind IN ('agent', 'platform') ORDER BY beneficiary, payout_id NULLS LAST"
                    )
                )
            ).all()
    finally:
        await engine.dispose()
    assert [(h, p, a, paid) for h, p, a, paid in rakes] == [
        (hands[0], monday, sub, True),
        (hands[1], monday, sub, False),
        (hands[2], monday, sub, False),
    ]
    assert sorted(totals, key=lambda r: (r[0], r[1], r[2] is None)) == sorted(
        [
            ("agent", str(agent), payout, 1, 1000, 50),
            ("agent", str(agent), None, 2, 2000, 100),
            ("agent", str(sub), payout, 1, 1000, 80),
            ("agent", str(sub), None, 2, 2000, 160),
            ("platform", "platform", None, 3, 3000, 2100),
        ],
        key=lambda r: (r[0], r[1], r[2] is None),
    )
