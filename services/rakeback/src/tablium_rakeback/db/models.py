"""Tables of the rakeback service.

Projections of the club service's facts (clubs, members, unions, deal versions), the rake each player
paid per hand (``rakes``: the facts accruals are computed from, kept so a late fact can re-evaluate
them and an audit can split any hand again), the accruals totalled per period, receiver and paying
player (``accrual_totals``, ADR 0011), and the payouts of periods.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Index,
    Integer,
    String,
    Table,
    Uuid,
    false,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from tablium_kit.db import service_metadata
from tablium_kit.messaging import messaging_tables
from tablium_kit.money import MAX_AMOUNT, AmountType, amount_checks


class Base(DeclarativeBase):
    metadata = service_metadata()


MESSAGING = messaging_tables(Base.metadata)

# A tournament fee given back (``events/entry_fee_refunds.py``): its rake never accrues, or no longer does.
REFUNDED = "refunded"


def signed_amount_checks(*columns: str) -> tuple[CheckConstraint, ...]:
    """Amounts that may be negative, within 128 bits either way: a total holding a paid fee's reversal."""
    return tuple(
        CheckConstraint(f"{c} >= -{MAX_AMOUNT} AND {c} <= {MAX_AMOUNT}", name=f"{c}_signed_u128") for c in columns
    )


class Club(Base):
    __tablename__ = "clubs"
    club_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    owner_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    closed: Mapped[bool] = mapped_column(Boolean, default=False)
    seq: Mapped[int] = mapped_column(BigInteger)


class Member(Base):
    """A player's membership of a club as last stated (newest ``seq`` wins)."""

    __tablename__ = "members"
    club_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    player_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    role: Mapped[str] = mapped_column(String(16))
    agent_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    active: Mapped[bool] = mapped_column(Boolean)
    seq: Mapped[int] = mapped_column(BigInteger)
    __table_args__ = (Index("ix_members_player", "player_id"),)


class UnionClub(Base):
    __tablename__ = "union_clubs"
    union_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    club_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    active: Mapped[bool] = mapped_column(Boolean)
    seq: Mapped[int] = mapped_column(BigInteger)


class DealVersion(Base):
    """Every version of a club's deal ever stated: a hand accrues under the one in force at its time."""

    __tablename__ = "deals"
    club_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    union_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    effective_from: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    union_bps: Mapped[int | None] = mapped_column(Integer)
    club_bps: Mapped[int] = mapped_column(Integer)
    player_bps: Mapped[int] = mapped_column(Integer)
    agents: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)


class Rake(Base):
    """The rake one player paid in one hand, and where its accrual stands.

    ``status``: ``accrued``; ``pending`` (a club table, but the membership or a deal in force is not known
    yet: re-evaluated when the missing fact arrives); ``tier`` (a public table: accrued at its period's
    payout run, by the player's tier then); ``refunded`` (a tournament fee given back: never evaluated, not
    counted towards a tier; if it had accrued, its parts were taken back out of the totals). An accrued
    rake's parts are in ``accrual_totals`` only: they are the split of ``rake`` along the receivers that
    ``member_club_id``, ``deal_version``, ``agent_id`` and ``union_id`` (or ``tier``) name, so they can be
    computed again (re-evaluation takes them back out of the totals, an audit lists them).
    """

    __tablename__ = "rakes"
    hand_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    player_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    table_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    club_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    union_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    asset: Mapped[str] = mapped_column(String(16))
    rake: Mapped[int] = mapped_column(AmountType)
    hand_time: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # The payout period of the hand (its totals' key), fixed when the rake is recorded.
    period_start: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(16))
    # The club the rake flowed through (the player's own, at a union table), the deal version used and the
    # member's agent then (what the receivers were built from).
    member_club_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    deal_version: Mapped[int | None] = mapped_column(Integer)
    agent_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    tier: Mapped[str | None] = mapped_column(String(32))
    # Its parts were paid out (set by the payout run that paid them): a late fact leaves it as it is.
    paid: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    __table_args__ = (
        *amount_checks("rake"),
        Index("ix_rakes_pending", "status", "player_id", postgresql_where="status <> 'accrued'"),
        # What a deal version may re-evaluate and a payout run marks paid: accrued rakes not paid yet.
        Index(
            "ix_rakes_unpaid",
            "member_club_id",
            "hand_time",
            postgresql_where="status = 'accrued' AND NOT paid",
        ),
        Index("ix_rakes_public", "player_id", "asset", "hand_time", postgresql_where="club_id IS NULL"),
    )


# One receiver's accruals from one paying player in one payout period: the number of hands, their rake and
# this receiver's parts, added up as hands accrue (one upsert per batch, not a row per hand and part).
# ``payout_id`` NULL: not paid yet (where new parts go); a payout run moves the unpaid rows to its payouts'
# ids, and a late hand of a paid period starts a new unpaid row. NULL counts as a value in the key. An unpaid
# row may be negative: the reversal of a tournament fee refunded after its period was paid (hands 0, rake and
# parts negated), netted off the receiver's next payout.
accrual_totals = Table(
    "accrual_totals",
    Base.metadata,
    Column("period_start", DateTime(timezone=True), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("beneficiary", String(64), nullable=False),
    Column("player_id", Uuid, nullable=False),
    Column("asset", String(16), nullable=False),
    Column("payout_id", Uuid, nullable=True),
    Column("hands", BigInteger, nullable=False),
    Column("rake", AmountType, nullable=False),
    Column("amount", AmountType, nullable=False),
    *signed_amount_checks("rake", "amount"),
    Index(
        "ix_accrual_totals_key",
        "kind",
        "beneficiary",
        "period_start",
        "player_id",
        "asset",
        "payout_id",
        unique=True,
        postgresql_nulls_not_distinct=True,
    ),
    Index("ix_accrual_totals_unpaid", "period_start", postgresql_where="payout_id IS NULL AND kind <> 'platform'"),
)
# Its pages are half full (fillfactor 50, set by migration d3f8a2b6c1e4: SQLAlchemy 2.0 has no table option
# for it): a batch's update of a total finds room on its page, a heap-only tuple with no new index entries.


class PayoutRun(Base):
    """A period paid: written once, in the transaction that requests every payout of the period."""

    __tablename__ = "payout_runs"
    period_start: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    period_end: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    payouts: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Payout(Base):
    __tablename__ = "payouts"
    payout_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    period_start: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    kind: Mapped[str] = mapped_column(String(16))
    beneficiary: Mapped[str] = mapped_column(String(64))
    asset: Mapped[str] = mapped_column(String(16))
    amount: Mapped[int] = mapped_column(AmountType)
    status: Mapped[str] = mapped_column(String(16))  # requested | completed
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    transfer_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    __table_args__ = (*amount_checks("amount"), Index("ix_payouts_period", "period_start"))


class PlayerTier(Base):
    """A player's tier per asset as last announced (``rakeback.tier_changed`` when it moves)."""

    __tablename__ = "tiers"
    player_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    asset: Mapped[str] = mapped_column(String(16), primary_key=True)
    tier: Mapped[str] = mapped_column(String(32))
    bps: Mapped[int] = mapped_column(Integer)
    rolling_rake: Mapped[int] = mapped_column(AmountType)
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    __table_args__ = amount_checks("rolling_rake")
