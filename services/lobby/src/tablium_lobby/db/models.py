"""Tables of the lobby service: cash tables, seats, chip movements (the wallet saga), hands and their actions.

Postgres is the source of truth (ARCHITECTURE.md §6): a table's ``seq`` only grows, and every accepted
action is a ``hand_actions`` row committed with the hand's state and the table's new ``seq`` before any
client hears of it. Chips are the asset's minor unit, unsigned 128-bit (``NUMERIC(39,0)``, ADR 0007).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from tablium_kit.club_projection import club_projection_tables
from tablium_kit.db import service_metadata
from tablium_kit.messaging import messaging_tables
from tablium_kit.money import AmountType, amount_checks


class Base(DeclarativeBase):
    metadata = service_metadata()


MESSAGING = messaging_tables(Base.metadata)
# The lobby's own projection of club membership (who may sit at a club table): the kit's tables.
CLUBS = club_projection_tables(Base.metadata)

# Seat statuses in which a seat is taken (a player holds it, or is on the way in or out).
ACTIVE_SEAT = ("buying_in", "seated", "leaving")


class CashTable(Base):
    """A cash table: its stakes and house rules, its escrow account, and its state's sequence number."""

    __tablename__ = "cash_tables"
    __table_args__ = (
        *amount_checks("small_blind", "big_blind", "ante", "rake_cap"),
        CheckConstraint("seat_count BETWEEN 2 AND 10", name="seat_count"),
        CheckConstraint("min_buy_in_bb >= 1 AND min_buy_in_bb <= max_buy_in_bb", name="buy_in_range"),
        CheckConstraint("rake_bps BETWEEN 0 AND 10000", name="rake_bps"),
        CheckConstraint("status IN ('open', 'closing', 'closed')", name="status"),
        CheckConstraint("time_bank_refill_s >= 0 AND time_bank_refill_hands >= 0", name="time_bank_refill"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    game: Mapped[str] = mapped_column(String(16), server_default=text("'nlhe'"))
    asset: Mapped[str] = mapped_column(String(16))
    small_blind: Mapped[int] = mapped_column(AmountType)
    big_blind: Mapped[int] = mapped_column(AmountType)
    ante: Mapped[int] = mapped_column(AmountType)
    seat_count: Mapped[int] = mapped_column(Integer)
    min_buy_in_bb: Mapped[int] = mapped_column(Integer)
    max_buy_in_bb: Mapped[int] = mapped_column(Integer)
    rake_bps: Mapped[int] = mapped_column(Integer)
    rake_cap: Mapped[int] = mapped_column(AmountType)
    action_clock_s: Mapped[int] = mapped_column(Integer)
    time_bank_s: Mapped[int] = mapped_column(Integer)
    # The time bank refill: +time_bank_refill_s every time_bank_refill_hands hands a seat played, up to
    # time_bank_s (0 hands: never refilled).
    time_bank_refill_s: Mapped[int] = mapped_column(Integer, server_default=text("5"))
    time_bank_refill_hands: Mapped[int] = mapped_column(Integer, server_default=text("10"))
    private: Mapped[bool] = mapped_column(Boolean)
    host_id: Mapped[uuid.UUID | None] = mapped_column()
    status: Mapped[str] = mapped_column(String(16), server_default=text("'open'"))
    escrow_account_id: Mapped[uuid.UUID] = mapped_column()
    # The table's state sequence: every state message carries it; it only grows.
    seq: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    button: Mapped[int | None] = mapped_column(Integer)
    hands_dealt: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    current_hand_id: Mapped[uuid.UUID | None] = mapped_column()
    # The fencing token of the table's lease: bumped by each instance that takes the lease, and compared
    # (under this row's lock) by every write only the lease holder may make (services/lease.py).
    lease_epoch: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # A club table: only the club's members sit, watch and quick-seat there (club_memberships below); a
    # union table (union_id too): the members of every club in the union. Null: a public table.
    club_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    union_id: Mapped[uuid.UUID | None] = mapped_column()


class Seat(Base):
    """One player's occupation of one seat, from the buy-in to the cash-out (a new row each sitting)."""

    __tablename__ = "seats"
    __table_args__ = (
        *amount_checks("stack"),
        CheckConstraint("status IN ('buying_in', 'seated', 'leaving', 'left', 'refused')", name="status"),
        # One seat per player per table, one player per seat: checked under the table's lock, and here.
        Index(
            "uq_seats_table_player_active",
            "table_id",
            "player_id",
            unique=True,
            postgresql_where=text("status IN ('buying_in', 'seated', 'leaving')"),
        ),
        Index(
            "uq_seats_table_seat_active",
            "table_id",
            "seat_no",
            unique=True,
            postgresql_where=text("status IN ('buying_in', 'seated', 'leaving')"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    table_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cash_tables.id"), index=True)
    seat_no: Mapped[int] = mapped_column(Integer)
    player_id: Mapped[uuid.UUID] = mapped_column(index=True)
    stack: Mapped[int] = mapped_column(AmountType, server_default=text("0"))
    status: Mapped[str] = mapped_column(String(16))
    # Asked to leave while dealt in: cashed out when the hand ends.
    leave_requested: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    sitting_out: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    time_bank_ms: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    # Hands this sitting was dealt into (the time bank refills every time_bank_refill_hands of them).
    hands_played: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ChipMovement(Base):
    """Money between a player's wallet account and a table's escrow: the saga's record.

    Written (``pending``) and committed before the wallet is called; the transfer id derives from this
    row's id, so the call can be repeated by the request or the reconciler without a second effect.
    """

    __tablename__ = "chip_movements"
    __table_args__ = (
        *amount_checks("amount"),
        CheckConstraint("kind IN ('buy_in', 'top_up', 'cash_out')", name="kind"),
        CheckConstraint("status IN ('pending', 'done', 'refused')", name="status"),
        Index("ix_chip_movements_pending", "created_at", postgresql_where=text("status = 'pending'")),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    seat_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("seats.id"), index=True)
    table_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cash_tables.id"))
    player_id: Mapped[uuid.UUID] = mapped_column()
    kind: Mapped[str] = mapped_column(String(16))
    amount: Mapped[int] = mapped_column(AmountType)
    status: Mapped[str] = mapped_column(String(16), server_default=text("'pending'"))
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class HandRecord(Base):
    """One hand: the engine's whole state (secret while it runs), its seed and commitment, its result."""

    __tablename__ = "hands"
    __table_args__ = (
        *amount_checks("rake"),
        CheckConstraint("status IN ('running', 'finished', 'settled')", name="status"),
        Index("ix_hands_unsettled", "finished_at", postgresql_where=text("status = 'finished'")),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    table_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cash_tables.id"), index=True)
    hand_no: Mapped[int] = mapped_column(BigInteger)
    seed: Mapped[bytes] = mapped_column(LargeBinary)
    commitment: Mapped[str] = mapped_column(String(64))
    # seat number (as a string) -> player id, for everyone dealt in.
    players: Mapped[dict[str, Any]] = mapped_column(JSONB)
    state: Mapped[dict[str, Any]] = mapped_column(JSONB)
    status: Mapped[str] = mapped_column(String(16))
    actions: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    # How many of those actions ``state`` includes: the hot path records an action's row alone (ADR 0012),
    # and the hand as committed is ``state`` with the actions numbered above this replayed on it.
    state_actions: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    # The actor's deadline (wall clock) while betting: a restarted runner keeps the clock.
    deadline: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The seq of the turn being played: an action must answer a seq from this one to the table's.
    turn_seq: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    rake: Mapped[int] = mapped_column(AmountType, server_default=text("0"))
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class HandAction(Base):
    """An accepted action, in order: the action log a hand can be replayed from."""

    __tablename__ = "hand_actions"
    __table_args__ = (*amount_checks("amount"),)

    hand_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("hands.id"), primary_key=True)
    number: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    seat: Mapped[int] = mapped_column(Integer)
    player_id: Mapped[uuid.UUID | None] = mapped_column()
    action: Mapped[str] = mapped_column(String(16))
    amount: Mapped[int] = mapped_column(AmountType, server_default=text("0"))
    # Why the server acted for the player (time-out), or null for the player's own action.
    automatic: Mapped[str | None] = mapped_column(String(16))
    # For an automatic action: the lease epoch of the instance that wrote it (the clock's owner then).
    lease_epoch: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class TableMember(Base):
    """A player's standing at a private table (seed 002): asked to join, approved, rejected or kicked.

    The host needs no row (the table names its host). One row per player and table; a decision changes
    it in place, so a repeated request, approval or kick finds it already done.
    """

    __tablename__ = "table_members"
    __table_args__ = (CheckConstraint("status IN ('pending', 'approved', 'rejected', 'kicked')", name="status"),)

    table_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cash_tables.id"), primary_key=True)
    player_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class RejoinToken(Base):
    """A seated player's single-use token to resume their seat on a new socket (stored as its SHA-256)."""

    __tablename__ = "rejoin_tokens"
    __table_args__ = (Index("ix_rejoin_tokens_expires_at", "expires_at"),)

    token_hash: Mapped[bytes] = mapped_column(LargeBinary, primary_key=True)
    table_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cash_tables.id"))
    player_id: Mapped[uuid.UUID] = mapped_column()
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


# Waiting lists and seat offers live in their own module; imported here so Base.metadata has them.
from tablium_lobby.db import waiting as _waiting  # noqa: E402, F401
