"""Tables of the wallet service: the ledger (accounts, transfers, pending transfers), limits, audit."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from tablium_kit.db import service_metadata
from tablium_kit.messaging import messaging_tables
from tablium_kit.money import AmountType, amount_checks


class Base(DeclarativeBase):
    metadata = service_metadata()


# The outbox (events this service publishes) and inbox (events it has handled).
MESSAGING = messaging_tables(Base.metadata)


class Account(Base):
    """One owner's account in one asset. The four counters are derived from its transfers.

    Counters are unsigned 128-bit (ADR 0007): they only grow, and a clearing account's move every wei.
    """

    __tablename__ = "accounts"
    __table_args__ = (
        UniqueConstraint("owner", "kind", "asset"),
        # The ledger checks these before writing; the database refuses a bug that would not.
        *amount_checks("debits_pending", "debits_posted", "credits_pending", "credits_posted", "debits_overdraft"),
        # debits_overdraft: what an allowed overdraft took past the credits (ADR 0010's deep-reorg debit).
        CheckConstraint(
            "flags & 1 = 0 OR debits_pending + debits_posted <= credits_posted + debits_overdraft",
            name="debits_must_not_exceed_credits",
        ),
        CheckConstraint(
            "flags & 2 = 0 OR credits_pending + credits_posted <= debits_posted",
            name="credits_must_not_exceed_debits",
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    owner: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(32))
    asset: Mapped[str] = mapped_column(String(16))
    flags: Mapped[int] = mapped_column(Integer, default=0)
    debits_pending: Mapped[int] = mapped_column(AmountType, default=0, server_default=text("0"))
    debits_posted: Mapped[int] = mapped_column(AmountType, default=0, server_default=text("0"))
    credits_pending: Mapped[int] = mapped_column(AmountType, default=0, server_default=text("0"))
    credits_posted: Mapped[int] = mapped_column(AmountType, default=0, server_default=text("0"))
    debits_overdraft: Mapped[int] = mapped_column(AmountType, default=0, server_default=text("0"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Transfer(Base):
    """An immutable ledger entry. Posting or voiding a pending transfer is a transfer of its own
    (``pending_id`` names the pending one; unique, so a pending transfer is resolved at most once)."""

    __tablename__ = "transfers"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        *amount_checks("amount"),
        CheckConstraint("debit_account_id <> credit_account_id", name="accounts_differ"),
        Index("ix_transfers_debit_account_seq", "debit_account_id", "seq"),
        Index("ix_transfers_credit_account_seq", "credit_account_id", "seq"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    # Insertion order: the cursor of history pages.
    seq: Mapped[int] = mapped_column(BigInteger, Identity(), unique=True)
    debit_account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id"))
    credit_account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id"))
    amount: Mapped[int] = mapped_column(AmountType)
    asset: Mapped[str] = mapped_column(String(16))
    code: Mapped[str] = mapped_column(String(64))
    flags: Mapped[int] = mapped_column(Integer)
    pending_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("transfers.id"), unique=True)
    timeout_s: Mapped[int | None] = mapped_column(Integer)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class PendingTransfer(Base):
    """A pending transfer not yet posted, voided or expired; the row goes when it is resolved."""

    __tablename__ = "pending_transfers"
    __table_args__ = (
        Index("ix_pending_transfers_expires_at", "expires_at", postgresql_where=text("expires_at IS NOT NULL")),
    )

    transfer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("transfers.id"), primary_key=True)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Set by the expiry job that claimed it; another instance skips it until then.
    claimed_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class PlayerLimits(Base):
    """A player's responsible-play limits, in force now, and a loosening waiting for its cooling-off."""

    __tablename__ = "limits"

    owner: Mapped[str] = mapped_column(String(100), primary_key=True)
    daily_deposit_limit: Mapped[dict[str, int]] = mapped_column(JSONB, default=dict)
    daily_loss_limit: Mapped[dict[str, int]] = mapped_column(JSONB, default=dict)
    self_excluded_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    scheduled: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    scheduled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class AuditEntry(Base):
    """Who did what to which account, why and when (admin credits and debits, limit changes)."""

    __tablename__ = "audit_log"
    __table_args__ = amount_checks("amount")

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(50))
    account_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("accounts.id"))
    transfer_id: Mapped[uuid.UUID | None] = mapped_column()
    amount: Mapped[int | None] = mapped_column(AmountType)
    asset: Mapped[str | None] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), index=True)


class Player(Base):
    """A registered player (from ``player.registered``): who may be credited by an admin.

    Money only moves to accounts of players that exist; an admin credit to a mistyped id would
    otherwise fund an account nobody owns.
    """

    __tablename__ = "players"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    registered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
