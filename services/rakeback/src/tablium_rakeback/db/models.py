"""Tables of the rakeback service.

Projections of the club service's facts (clubs, members, unions, deal versions), the rake each player
paid per hand (``rakes``: the facts accruals are computed from, kept so a late fact can re-evaluate
them), the accruals (one row per receiver of a rake), and the payouts of periods.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, CheckConstraint, DateTime, Index, Integer, String, Uuid
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from tablium_kit.db import service_metadata
from tablium_kit.messaging import messaging_tables
from tablium_kit.money import MAX_AMOUNT, AmountType, amount_checks


class Base(DeclarativeBase):
    metadata = service_metadata()


MESSAGING = messaging_tables(Base.metadata)

# A tournament fee given back: its rake never accrues, and a reversal's (the negation of a paid one) is this too.
REFUNDED = "refunded"


def signed_amount_check(column: str) -> CheckConstraint:
    """An amount that may be negative: a paid fee's reversal (``events/entry_fee_refunds.py``) is the
    negation of the rake and parts it reverses, within 128 bits either way."""
    return CheckConstraint(f"{column} >= -{MAX_AMOUNT} AND {column} <= {MAX_AMOUNT}", name=f"{column}_signed_u128")


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
    payout run, by the player's tier then); ``refunded`` (a tournament fee given back, or the reversal of a
    paid one, whose ``rake`` is negative: never evaluated, and not counted towards a tier).
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
    status: Mapped[str] = mapped_column(String(16))
    # The club the rake flowed through (the player's own, at a union table) and the deal version used.
    member_club_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    deal_version: Mapped[int | None] = mapped_column(Integer)
    tier: Mapped[str | None] = mapped_column(String(32))
    __table_args__ = (
        signed_amount_check("rake"),
        Index("ix_rakes_pending", "status", "player_id", postgresql_where="status <> 'accrued'"),
        Index("ix_rakes_member_club", "member_club_id", "hand_time"),
        Index("ix_rakes_public", "player_id", "asset", "hand_time", postgresql_where="club_id IS NULL"),
    )


class Accrual(Base):
    """One receiver's part of one player's rake in one hand (the platform's part too); negative in the
    reversal of a paid tournament fee."""

    __tablename__ = "accruals"
    hand_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    player_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    beneficiary: Mapped[str] = mapped_column(String(64), primary_key=True)
    asset: Mapped[str] = mapped_column(String(16))
    amount: Mapped[int] = mapped_column(AmountType)
    bps: Mapped[int] = mapped_column(Integer)
    hand_time: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    payout_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    __table_args__ = (
        signed_amount_check("amount"),
        Index("ix_accruals_beneficiary", "kind", "beneficiary", "hand_time"),
        Index("ix_accruals_unpaid", "hand_time", postgresql_where="payout_id IS NULL AND kind <> 'platform'"),
    )


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
