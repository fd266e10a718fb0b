"""Reading and changing a player's responsible-play limits (every change is audited)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

import msgspec
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from tablium_wallet.db.models import AuditEntry, PlayerLimits
from tablium_wallet.domain import limits as rules
from tablium_wallet.domain.assets import check_asset


def decode_limits(document: str) -> rules.Limits:
    return msgspec.json.decode(document, type=rules.Limits)


def encode_limits(limits: rules.Limits) -> str:
    return msgspec.json.encode(limits).decode()


@dataclass(frozen=True)
class LimitsState:
    in_force: rules.Limits
    scheduled: rules.Limits | None
    scheduled_at: datetime | None


def _state(row: PlayerLimits | None, now: datetime) -> LimitsState:
    if row is None:
        return LimitsState(rules.Limits(), None, None)
    applied = rules.Limits(dict(row.daily_deposit_limit), dict(row.daily_loss_limit), row.self_excluded_until)
    scheduled = decode_limits(json.dumps(row.scheduled)) if row.scheduled else None
    if scheduled is not None and row.scheduled_at is not None and row.scheduled_at <= now:
        return LimitsState(scheduled, None, None)
    return LimitsState(applied, scheduled, row.scheduled_at)


async def get_limits(session: AsyncSession, owner: str, now: datetime) -> LimitsState:
    return _state(await session.get(PlayerLimits, owner), now)


async def set_limits(
    session: AsyncSession, owner: str, requested: rules.Limits, *, now: datetime, cooling_off: timedelta, actor: str
) -> LimitsState:
    for asset in (*requested.daily_deposit_limit, *requested.daily_loss_limit):
        check_asset(asset)
    await session.execute(insert(PlayerLimits).values(owner=owner).on_conflict_do_nothing())
    row = await session.scalar(select(PlayerLimits).where(PlayerLimits.owner == owner).with_for_update())
    assert row is not None
    current = _state(row, now).in_force
    change = rules.plan_change(current, requested, now, cooling_off)
    row.daily_deposit_limit = change.applied.daily_deposit_limit
    row.daily_loss_limit = change.applied.daily_loss_limit
    row.self_excluded_until = change.applied.self_excluded_until
    row.scheduled = json.loads(encode_limits(change.scheduled)) if change.scheduled else None
    row.scheduled_at = change.effective_at
    row.updated_at = now
    session.add(
        AuditEntry(
            actor=actor,
            action="limits_changed",
            reason="player request",
            details={
                "requested": json.loads(encode_limits(requested)),
                "applied": json.loads(encode_limits(change.applied)),
            },
        )
    )
    await session.flush()
    return LimitsState(change.applied, change.scheduled, change.effective_at)
