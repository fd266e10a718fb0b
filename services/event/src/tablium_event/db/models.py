"""Tables of the event service."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from advanced_alchemy.mixins import AuditColumns, UUIDv7PrimaryKey
from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import BigInteger, ForeignKey, Integer, String, UniqueConstraint, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from tablium_kit.club_projection import club_projection_tables
from tablium_kit.db import service_metadata
from tablium_kit.messaging import messaging_tables
from tablium_kit.money import AmountType, amount_checks


class Base(DeclarativeBase):
    metadata = service_metadata()


MESSAGING = messaging_tables(Base.metadata)
# The projection of club membership (who may enter a club tournament, who directs it): the kit's tables.
CLUBS = club_projection_tables(Base.metadata)


class TournamentRow(UUIDv7PrimaryKey, AuditColumns, Base):
    """A tournament: its configuration, and once started a snapshot of the engine's state (JSON).

    The engine now is ``state`` (taken at ``state_version``) with the journal's facts after it replayed
    (docs/adr/0006-tournament-engine.md, "Persistence").
    """

    __tablename__ = "tournaments"
    name: Mapped[str] = mapped_column(String(100))
    # draft -> registering -> starting -> running -> finished; cancelling -> cancelled from any before finished.
    status: Mapped[str] = mapped_column(String(16), default="draft", index=True)
    config: Mapped[dict[str, Any]] = mapped_column(JSONB)
    # Deferred: megabytes for a big field, read only to load the engine (and then with its version).
    state: Mapped[dict[str, Any] | None] = mapped_column(JSONB, default=None, deferred=True)
    # Bumped on every change of state; carried in events so consumers can order them.
    version: Mapped[int] = mapped_column(BigInteger, default=0)
    # The version ``state`` was taken at: the journal's facts with a higher seq come after it.
    state_version: Mapped[int] = mapped_column(BigInteger, default=0)
    created_by: Mapped[str] = mapped_column(String(64))
    prize_pool_account_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    # A club tournament: only the club's members may enter (with ``union_id``: the members of every club of
    # that union), and the club's owner and managers direct it (docs/clubs.md, "Club tournaments").
    club_id: Mapped[uuid.UUID | None] = mapped_column(default=None, index=True)
    union_id: Mapped[uuid.UUID | None] = mapped_column(default=None, index=True)
    started_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)


class Registration(UUIDv7PrimaryKey, AuditColumns, Base):
    """One entry's money: the hold taken at registration and what became of it.

    status: holding (row written, wallet hold not confirmed) -> held -> posted (in the pool; a late entry
    through posting: its hold being posted, then seated) | voiding -> voided (unregistered, refused, or
    cancelled before the start) | refunding -> refunded (cancelled after) | failed (refused). Each move is a
    compare-and-set (``db/steps.py``), so a late answer never overwrites a later status.
    """

    __tablename__ = "registrations"
    __table_args__ = (UniqueConstraint("tournament_id", "player_id", "entry_no"), *amount_checks("amount"))
    tournament_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tournaments.id", ondelete="CASCADE"), index=True)
    player_id: Mapped[uuid.UUID] = mapped_column(index=True)
    entry_no: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="holding", index=True)
    amount: Mapped[int] = mapped_column(AmountType)
    hold_transfer_id: Mapped[uuid.UUID] = mapped_column(unique=True)
    player_account_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    # The engine's entry id, once the entry is in the tournament.
    entry_id: Mapped[int | None] = mapped_column(Integer, default=None)
    failure: Mapped[str | None] = mapped_column(String(200), default=None)


class Prize(Base):
    """Money owed from the prize pool to a player: a place or a bounty. Paid once (deterministic transfer id)."""

    __tablename__ = "prizes"
    __table_args__ = amount_checks("amount")
    transfer_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    tournament_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tournaments.id", ondelete="CASCADE"), index=True)
    player_id: Mapped[uuid.UUID] = mapped_column()
    entry_id: Mapped[int] = mapped_column(Integer)
    place: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))
    amount: Mapped[int] = mapped_column(AmountType)
    # owed -> paying -> paid; held: a tie's, waiting for the director's review (``tie_review_s``) before owed;
    # voided: replaced by a director's ordering of the tie (services/ties.py)
    status: Mapped[str] = mapped_column(String(16), default="owed", index=True)
    created_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True), server_default=func.now())


class Fact(Base):
    """One fact the engine was given (a hand, a clock tick, a command, a late entry, a purchase), in order.

    ``seq`` is the tournament's version once the fact was applied; ``payload`` holds its arguments,
    including the ``now_ms`` of the clock tick that comes with it, so replaying it is exact.
    """

    __tablename__ = "tournament_facts"
    tournament_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tournaments.id", ondelete="CASCADE"), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    # The engine's RULES_VERSION that applied it: a replay by an engine of other rules is refused.
    rules_version: Mapped[int] = mapped_column(Integer)


class Snapshot(Base):
    """When a snapshot was taken (its state is ``TournamentRow.state`` while it is the latest): the
    journal before an old enough one may be pruned (``EventSettings.keep_snapshots``)."""

    __tablename__ = "tournament_snapshots"
    tournament_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tournaments.id", ondelete="CASCADE"), primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    rules_version: Mapped[int] = mapped_column(Integer)
    taken_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True), server_default=func.now())


class HandReport(Base):
    """Hands already applied (the lobby may report one twice); the answer is kept for the replay."""

    __tablename__ = "hand_reports"
    tournament_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tournaments.id", ondelete="CASCADE"), primary_key=True)
    hand_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    response: Mapped[dict[str, Any]] = mapped_column(JSONB)


class Purchase(UUIDv7PrimaryKey, AuditColumns, Base):
    """A rebuy or an add-on bought by a player during the tournament: ``amount`` is its price,
    ``config.price(kind).total`` (a rebuy: buy-in + PKO bounty part + fee, the fee moved on to the house
    after the post; an add-on: the buy-in).

    status: holding (row written, wallet hold not confirmed) -> held -> posting (the engine said yes; the
    hold being posted) -> posted (in the pool, chips given) | voiding -> voided (the engine refused it after
    the hold) | refunding -> refunded (refused after the post, or cancelled) | failed (the wallet refused
    it). Each move is a compare-and-set (``db/steps.py``; the service's ``_drive_purchase``).
    """

    __tablename__ = "purchases"
    __table_args__ = amount_checks("amount")
    # uuid5 of (tournament, kind, player, the client's request id): a retried request finds its row.
    transfer_id: Mapped[uuid.UUID] = mapped_column(unique=True)
    tournament_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tournaments.id", ondelete="CASCADE"), index=True)
    player_id: Mapped[uuid.UUID] = mapped_column()
    entry_id: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(8))  # rebuy | addon
    amount: Mapped[int] = mapped_column(AmountType)
    status: Mapped[str] = mapped_column(String(16), default="holding", index=True)
    player_account_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    failure: Mapped[str | None] = mapped_column(String(200), default=None)
