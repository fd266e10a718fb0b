"""Waiting lists and seat offers (quick seat): Postgres is their source of truth; Redis holds a derived,
rebuildable copy for fast reads (ADR 0008, "Quick seat and waiting lists").

A list is identified by its stakes (``list_key``: game, blinds, ante, seat count). An entry is one
player's place in one list, in the order of ``number``; an offer reserves one seat of one table for one
entry until it expires.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, DateTime, ForeignKey, Identity, Index, Integer, String, func, text
from sqlalchemy.orm import Mapped, mapped_column

from tablium_kit.money import AmountType, amount_checks
from tablium_lobby.db.models import Base

# Entry statuses in which a player is on a list (one such entry per player per list).
ACTIVE_ENTRY = ("waiting", "offered")


class WaitingEntry(Base):
    """One player's place in the waiting list of one stake."""

    __tablename__ = "waiting_entries"
    __table_args__ = (
        *amount_checks("small_blind", "big_blind", "ante", "buy_in"),
        # refused: seated with an offer, then the buy-in was refused (funds, limits); out of the line.
        CheckConstraint("status IN ('waiting', 'offered', 'seated', 'left', 'missed', 'refused')", name="status"),
        Index(
            "uq_waiting_entries_list_player_active",
            "list_key",
            "player_id",
            unique=True,
            postgresql_where=text("status IN ('waiting', 'offered')"),
        ),
        Index("ix_waiting_entries_list_waiting", "list_key", "number", postgresql_where=text("status = 'waiting'")),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    # The order of the line: first come, first offered.
    number: Mapped[int] = mapped_column(BigInteger, Identity(), unique=True)
    list_key: Mapped[str] = mapped_column(String(200))
    player_id: Mapped[uuid.UUID] = mapped_column(index=True)
    game: Mapped[str] = mapped_column(String(16))
    small_blind: Mapped[int] = mapped_column(AmountType)
    big_blind: Mapped[int] = mapped_column(AmountType)
    ante: Mapped[int] = mapped_column(AmountType)
    seat_count: Mapped[int] = mapped_column(Integer)
    # The buy-in the player asked for (an offer is accepted with it unless the player names another).
    buy_in: Mapped[int] = mapped_column(AmountType)
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class SeatOffer(Base):
    """A seat held for one waiting entry until ``expires_at``: taken by sitting down with the offer."""

    __tablename__ = "seat_offers"
    __table_args__ = (
        CheckConstraint("status IN ('open', 'accepted', 'expired', 'withdrawn')", name="status"),
        # One open offer per seat, and per entry.
        Index(
            "uq_seat_offers_table_seat_open",
            "table_id",
            "seat_no",
            unique=True,
            postgresql_where=text("status = 'open'"),
        ),
        Index("uq_seat_offers_entry_open", "entry_id", unique=True, postgresql_where=text("status = 'open'")),
        Index("ix_seat_offers_open_expiry", "expires_at", postgresql_where=text("status = 'open'")),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    entry_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("waiting_entries.id"), index=True)
    table_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cash_tables.id"), index=True)
    seat_no: Mapped[int] = mapped_column(Integer)
    player_id: Mapped[uuid.UUID] = mapped_column()
    status: Mapped[str] = mapped_column(String(16))
    # The seat taken with this offer.
    seat_id: Mapped[uuid.UUID | None] = mapped_column()
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
