"""Tables of the club service.

Every write to a club takes its ``clubs`` row lock first (``SELECT … FOR UPDATE``), checks under it, then
bumps the club's ``seq`` for each event it writes: one lock per club, so concurrent identical requests
(two approvals of one request, two joins with one code) serialise and the second finds the first's work.
Union writes take the ``unions`` row lock the same way, for the union's own ``seq``.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, Integer, String, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from tablium_kit.db import service_metadata
from tablium_kit.messaging import messaging_tables


class Base(DeclarativeBase):
    metadata = service_metadata()


# The outbox (events this service publishes) and inbox (events it has handled).
MESSAGING = messaging_tables(Base.metadata)


def _now() -> Any:
    return mapped_column(DateTimeUTC(timezone=True), server_default=func.now())


class Club(Base):
    __tablename__ = "clubs"
    __table_args__ = (
        CheckConstraint("status IN ('open', 'closed')", name="status"),
        CheckConstraint("privacy IN ('public', 'private')", name="privacy"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(60))
    description: Mapped[str] = mapped_column(String(1000), default="")
    logo_url: Mapped[str | None] = mapped_column(String(500), default=None)
    # public: anyone may see it and ask to join; private: only members see it, joining needs a code.
    privacy: Mapped[str] = mapped_column(String(16), default="private")
    # The rules a manager's new club table starts from (stakes, seats, ...): opaque to this service.
    default_table_rules: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    owner_id: Mapped[uuid.UUID] = mapped_column()
    status: Mapped[str] = mapped_column(String(16), default="open")
    union_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("unions.id"), default=None)
    # The club's event sequence number (docs/events/club.md): the newest event's.
    seq: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = _now()
    closed_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)


class Member(Base):
    """A current member. Leaving deletes the row (the audit trail and events keep the history)."""

    __tablename__ = "members"
    __table_args__ = (CheckConstraint("role IN ('owner', 'manager', 'agent', 'member')", name="role"),)

    club_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("clubs.id"), primary_key=True)
    player_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    role: Mapped[str] = mapped_column(String(16))
    # The agent who recruited this member (for an agent: its parent agent); null: directly under the club.
    agent_id: Mapped[uuid.UUID | None] = mapped_column(default=None, index=True)
    joined_at: Mapped[datetime] = _now()


class JoinRequest(Base):
    __tablename__ = "join_requests"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'approved', 'rejected', 'cancelled')", name="status"),
        # One pending request per player and club: a repeated request finds it.
        Index(
            "uq_join_requests_pending",
            "club_id",
            "player_id",
            unique=True,
            postgresql_where=text("status = 'pending'"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    club_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("clubs.id"), index=True)
    player_id: Mapped[uuid.UUID] = mapped_column()
    message: Mapped[str] = mapped_column(String(280), default="")
    status: Mapped[str] = mapped_column(String(16), default="pending")
    created_at: Mapped[datetime] = _now()
    decided_by: Mapped[uuid.UUID | None] = mapped_column(default=None)
    decided_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)


class InviteCode(Base):
    """A code that admits its bearer at once; an agent's code makes the agent the recruit's agent."""

    __tablename__ = "invite_codes"
    __table_args__ = (CheckConstraint("max_uses IS NULL OR max_uses >= 1", name="max_uses"),)

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    club_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("clubs.id"), index=True)
    created_by: Mapped[uuid.UUID] = mapped_column()
    agent_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    expires_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    max_uses: Mapped[int | None] = mapped_column(Integer, default=None)
    uses: Mapped[int] = mapped_column(Integer, default=0)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    created_at: Mapped[datetime] = _now()


class Ban(Base):
    __tablename__ = "bans"

    club_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("clubs.id"), primary_key=True)
    player_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    banned_by: Mapped[uuid.UUID] = mapped_column()
    reason: Mapped[str] = mapped_column(String(280), default="")
    created_at: Mapped[datetime] = _now()


class Deal(Base):
    """One version of a club's rakeback deal (docs/events/club.md: cumulative basis points)."""

    __tablename__ = "deals"
    __table_args__ = (CheckConstraint("version >= 1", name="version"),)

    club_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("clubs.id"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    effective_from: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    union_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    union_bps: Mapped[int | None] = mapped_column(Integer, default=None)
    club_bps: Mapped[int] = mapped_column(Integer)
    player_bps: Mapped[int] = mapped_column(Integer)
    # [{agent_id, parent_agent_id, bps, player_bps}], as published.
    agents: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    created_by: Mapped[uuid.UUID] = mapped_column()
    created_at: Mapped[datetime] = _now()


class Union(Base):
    __tablename__ = "unions"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(60))
    owner_id: Mapped[uuid.UUID] = mapped_column()
    # The club that founded it (its owner is the union's owner until transferred).
    founding_club_id: Mapped[uuid.UUID] = mapped_column()
    seq: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = _now()


class UnionClub(Base):
    """A club's place in a union: asked (``pending``) or in (``member``). Leaving deletes the row."""

    __tablename__ = "union_clubs"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'member')", name="status"),
        CheckConstraint("union_bps IS NULL OR union_bps BETWEEN 0 AND 10000", name="union_bps"),
    )

    union_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("unions.id"), primary_key=True)
    club_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("clubs.id"), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    # What the union hands down to this club (set by the union's owner; the club's deal stays under it).
    union_bps: Mapped[int | None] = mapped_column(Integer, default=None)
    requested_by: Mapped[uuid.UUID] = mapped_column()
    created_at: Mapped[datetime] = _now()


class AuditEntry(Base):
    """A privileged action: who, what, when, the state before and after."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_club_at", "club_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    club_id: Mapped[uuid.UUID] = mapped_column()
    actor_id: Mapped[uuid.UUID] = mapped_column()
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str | None] = mapped_column(String(64), default=None)
    before: Mapped[dict[str, Any] | None] = mapped_column(JSONB, default=None)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSONB, default=None)
    at: Mapped[datetime] = _now()


class ClubTable(Base):
    """A lobby table of the club (or of its union, opened by this club's staff), from the lobby's events."""

    __tablename__ = "club_tables"

    table_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    club_id: Mapped[uuid.UUID] = mapped_column(index=True)
    union_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    name: Mapped[str] = mapped_column(String(64))
    asset: Mapped[str] = mapped_column(String(16))
    small_blind: Mapped[str] = mapped_column(String(40))
    big_blind: Mapped[str] = mapped_column(String(40))
    seats: Mapped[int] = mapped_column(Integer)
    opened_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
