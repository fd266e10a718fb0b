"""Responsible play: daily deposit and loss limits, self-exclusion, and how changes take effect.

Tightening (a lower limit, a new limit, a longer self-exclusion) applies at once. Loosening (a higher
limit, removing one, ending a self-exclusion early) only after a cooling-off delay: the change is
scheduled, and a later request replaces whatever was scheduled (and restarts the delay for anything it
loosens). Days are UTC days.

>>> from datetime import datetime, timedelta, UTC
>>> now = datetime(2026, 1, 1, tzinfo=UTC)
>>> current = Limits(daily_loss_limit={"USDT": 100})
>>> change = plan_change(current, Limits(daily_loss_limit={"USDT": 50}), now, timedelta(days=1))
>>> change.applied.daily_loss_limit, change.scheduled
({'USDT': 50}, None)
>>> change = plan_change(current, Limits(daily_loss_limit={"USDT": 500}), now, timedelta(days=1))
>>> change.applied.daily_loss_limit, change.scheduled.daily_loss_limit, change.effective_at == now + timedelta(days=1)
({'USDT': 100}, {'USDT': 500}, True)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

Activity = Literal["deposit", "stake"]


@dataclass(frozen=True)
class Limits:
    """One player's limits. Amounts are per asset, in minor units; a missing asset means no limit."""

    daily_deposit_limit: dict[str, int] = field(default_factory=dict)
    daily_loss_limit: dict[str, int] = field(default_factory=dict)
    self_excluded_until: datetime | None = None


@dataclass(frozen=True)
class Change:
    applied: Limits
    scheduled: Limits | None
    effective_at: datetime | None


def _tighter_amount(new: int | None, old: int | None) -> bool:
    return new is not None and (old is None or new <= old)


def _merge_amounts(old: dict[str, int], new: dict[str, int]) -> tuple[dict[str, int], dict[str, int], bool]:
    """(applied now, target after cooling-off, whether anything waits)."""
    applied: dict[str, int] = {}
    loosened = False
    for asset in old.keys() | new.keys():
        before, after = old.get(asset), new.get(asset)
        if _tighter_amount(after, before):
            assert after is not None
            applied[asset] = after
        else:
            loosened = True
            if before is not None:
                applied[asset] = before
    return applied, dict(new), loosened


def plan_change(current: Limits, requested: Limits, now: datetime, cooling_off: timedelta) -> Change:
    deposit_now, deposit_later, deposit_loosened = _merge_amounts(
        current.daily_deposit_limit, requested.daily_deposit_limit
    )
    loss_now, loss_later, loss_loosened = _merge_amounts(current.daily_loss_limit, requested.daily_loss_limit)
    old_until = (
        current.self_excluded_until if current.self_excluded_until and current.self_excluded_until > now else None
    )
    new_until = (
        requested.self_excluded_until if requested.self_excluded_until and requested.self_excluded_until > now else None
    )
    until_now: datetime | None
    if new_until is not None and (old_until is None or new_until >= old_until):
        until_now, exclusion_loosened = new_until, False
    else:
        until_now, exclusion_loosened = old_until, old_until != new_until
    applied = Limits(daily_deposit_limit=deposit_now, daily_loss_limit=loss_now, self_excluded_until=until_now)
    if not (deposit_loosened or loss_loosened or exclusion_loosened):
        return Change(applied=applied, scheduled=None, effective_at=None)
    scheduled = Limits(daily_deposit_limit=deposit_later, daily_loss_limit=loss_later, self_excluded_until=new_until)
    return Change(applied=applied, scheduled=scheduled, effective_at=now + cooling_off)


def effective(applied: Limits, scheduled: Limits | None, effective_at: datetime | None, now: datetime) -> Limits:
    """The limits in force at ``now``: a scheduled loosening counts once its cooling-off is over."""
    if scheduled is not None and effective_at is not None and effective_at <= now:
        return scheduled
    return applied


@dataclass
class DayTotals:
    """What a player's account did today, in one asset: deposits in, stakes out, stakes won back."""

    deposits: int = 0
    staked: int = 0
    returned: int = 0

    @property
    def net_loss(self) -> int:
        return self.staked - self.returned


@dataclass(frozen=True)
class Breach:
    limit: str
    detail: str
    value: int | str


def check(
    limits: Limits, activity: Activity, asset: str, amount: int, today: DayTotals, now: datetime
) -> Breach | None:
    """Would depositing or staking ``amount`` now break a limit? Returns what it breaks, if anything."""
    if limits.self_excluded_until is not None and limits.self_excluded_until > now:
        return Breach(
            "self_exclusion",
            f"self-excluded until {limits.self_excluded_until.isoformat()}",
            limits.self_excluded_until.isoformat(),
        )
    if activity == "deposit":
        cap = limits.daily_deposit_limit.get(asset)
        if cap is not None and today.deposits + amount > cap:
            return Breach(
                "daily_deposit_limit",
                f"deposits today would reach {today.deposits + amount}, over the daily limit of {cap}",
                cap,
            )
    else:
        cap = limits.daily_loss_limit.get(asset)
        if cap is not None and today.net_loss + amount > cap:
            return Breach(
                "daily_loss_limit",
                f"losses today could reach {today.net_loss + amount}, over the daily limit of {cap}",
                cap,
            )
    return None
