"""Payout periods: fixed-length windows counted from an anchor (a Monday 00:00 UTC: weeks start on Mondays). Pure."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

# Namespace of the ids derived from a period's facts (payouts).
PAYOUT_NAMESPACE = uuid.UUID("3d0f4f8e-7a52-4d8b-9a57-2b8e5c1a9f40")
ANCHOR = datetime(1970, 1, 5, tzinfo=UTC)  # a Monday, 00:00 UTC


@dataclass(frozen=True)
class Period:
    start: datetime
    end: datetime


def period_of(moment: datetime, length: timedelta, anchor: datetime = ANCHOR) -> Period:
    """The period of ``length`` containing ``moment``."""
    count = (moment - anchor) // length
    start = anchor + count * length
    return Period(start, start + length)


def last_ended(now: datetime, length: timedelta, anchor: datetime = ANCHOR) -> Period:
    """The latest period that ended at or before ``now``."""
    current = period_of(now, length, anchor)
    return period_of(current.start - timedelta(microseconds=1), length, anchor)


def payout_id(period_start: datetime, kind: str, beneficiary: str, asset: str) -> uuid.UUID:
    """One payout per period, receiver and asset, whoever runs the period and however often."""
    return uuid.uuid5(PAYOUT_NAMESPACE, f"{period_start.isoformat()}:{kind}:{beneficiary}:{asset}")
