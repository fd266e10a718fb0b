"""Lobby analytics: tables open and playing, seated players, hands per hour per stake (REST and Prometheus)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import Gauge
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from tablium_lobby.db.models import ACTIVE_SEAT, CashTable, HandRecord, Seat

TABLES = Gauge("tablium_lobby_tables", "Cash tables by state", ["state"])
SEATED = Gauge("tablium_lobby_seated_players", "Players holding a seat")
HANDS_PER_HOUR = Gauge("tablium_lobby_hands_per_hour", "Hands finished in the last hour", ["stakes"])


async def lobby_stats(session: AsyncSession) -> dict[str, Any]:
    since = datetime.now(UTC) - timedelta(hours=1)
    open_tables = await session.scalar(select(func.count()).where(CashTable.status == "open")) or 0
    playing = (
        await session.scalar(
            select(func.count()).where(CashTable.status == "open", CashTable.current_hand_id.is_not(None))
        )
        or 0
    )
    seated = await session.scalar(select(func.count()).where(Seat.status.in_(ACTIVE_SEAT))) or 0
    rows = await session.execute(
        select(CashTable.small_blind, CashTable.big_blind, func.count())
        .join(HandRecord, HandRecord.table_id == CashTable.id)
        .where(HandRecord.finished_at >= since)
        .group_by(CashTable.small_blind, CashTable.big_blind)
        .order_by(CashTable.big_blind, CashTable.small_blind)
    )
    per_stake = [{"stakes": f"{sb}/{bb}", "hands": int(count)} for sb, bb, count in rows.all()]
    TABLES.labels("open").set(open_tables)
    TABLES.labels("playing").set(playing)
    SEATED.set(seated)
    for entry in per_stake:
        HANDS_PER_HOUR.labels(entry["stakes"]).set(entry["hands"])
    return {
        "tables_open": int(open_tables),
        "tables_playing": int(playing),
        "seated_players": int(seated),
        "hands_last_hour": per_stake,
    }
