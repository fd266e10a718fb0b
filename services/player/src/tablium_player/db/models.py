"""Tables of the player service."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from advanced_alchemy.mixins import AuditColumns, UUIDv7PrimaryKey
from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import BigInteger, Boolean, CheckConstraint, DateTime, ForeignKey, Index, Integer, String
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from tablium_kit.db import service_metadata
from tablium_kit.messaging import messaging_tables
from tablium_kit.money import MAX_AMOUNT, AmountType, amount_checks


class Base(DeclarativeBase):
    metadata = service_metadata()


# The outbox (events this service publishes) and inbox (events it has handled).
MESSAGING = messaging_tables(Base.metadata)


class Player(UUIDv7PrimaryKey, AuditColumns, Base):
    """A player's account, profile and the XP and stats that hand and tournament events feed.

    The counters are sums over the player's ``played_hands`` rows (``events/hands.py`` adds to both in
    one transaction); money results are per asset, in ``player_asset_stats``.
    """

    __tablename__ = "players"
    username: Mapped[str] = mapped_column(String(20))
    email: Mapped[str] = mapped_column(String(254))
    # rules.identity_key of username and email (NFKC, case folded): what uniqueness and logins
    # compare, computed in Python only, so the check before an insert and the index agree. NULL
    # only for an account whose identifier collided with an older one when the keys were
    # introduced (migration 5b1f0c7d2e94); new accounts always have both.
    username_key: Mapped[str | None] = mapped_column(String(20), unique=True)
    email_key: Mapped[str | None] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    roles: Mapped[list[str]] = mapped_column(ARRAY(String(32)), default=lambda: ["player"])
    display_name: Mapped[str | None] = mapped_column(String(40), default=None)
    country: Mapped[str | None] = mapped_column(String(2), default=None)
    bio: Mapped[str | None] = mapped_column(String(280), default=None)
    preferences: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    xp: Mapped[int] = mapped_column(BigInteger, default=0)
    level: Mapped[int] = mapped_column(Integer, default=1)
    hands_played: Mapped[int] = mapped_column(BigInteger, default=0)
    hands_vpip: Mapped[int] = mapped_column(BigInteger, default=0)
    hands_pfr: Mapped[int] = mapped_column(BigInteger, default=0)
    tournaments_played: Mapped[int] = mapped_column(BigInteger, default=0)


class RefreshToken(Base):
    """One link of a rotation chain. Only the token's SHA-256 is stored."""

    __tablename__ = "refresh_tokens"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    family_id: Mapped[uuid.UUID] = mapped_column(index=True)
    player_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("players.id", ondelete="CASCADE"), index=True)
    issued_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    # Set when this token was exchanged for the next one; presenting it again is reuse.
    rotated_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)


class PlayedHand(Base):
    """One player's part in one hand, from ``lobby.hand_completed``: the row that makes a hand count once.

    Its primary key is the fact itself (hand, player), so the same hand in a second envelope, or
    redelivered to a second consumer at the same time, finds the row and adds nothing.
    """

    __tablename__ = "played_hands"
    __table_args__ = (
        *amount_checks("big_blind", "stack_before", "stack_after", "rake", "won"),
        Index("ix_played_hands_player_finished", "player_id", "finished_at"),
    )

    hand_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    player_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("players.id", ondelete="CASCADE"), primary_key=True)
    table_id: Mapped[uuid.UUID] = mapped_column()
    tournament_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    asset: Mapped[str] = mapped_column(String(16))
    big_blind: Mapped[int] = mapped_column(AmountType)
    stack_before: Mapped[int] = mapped_column(AmountType)
    stack_after: Mapped[int] = mapped_column(AmountType)
    rake: Mapped[int] = mapped_column(AmountType)
    won: Mapped[int] = mapped_column(AmountType)
    vpip: Mapped[bool] = mapped_column(Boolean)
    pfr: Mapped[bool] = mapped_column(Boolean)
    xp: Mapped[int] = mapped_column(Integer)
    # The event's time: when the lobby committed the hand's end.
    finished_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


SIGNED_128 = f"BETWEEN -{MAX_AMOUNT} AND {MAX_AMOUNT}"


class PlayerAssetStats(Base):
    """A player's money results at cash tables in one asset (tournament chips are not money)."""

    __tablename__ = "player_asset_stats"
    __table_args__ = (
        *amount_checks("rake_paid", "biggest_pot_won"),
        CheckConstraint(f"net_winnings {SIGNED_128}", name="net_winnings_i128"),
    )

    player_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("players.id", ondelete="CASCADE"), primary_key=True)
    asset: Mapped[str] = mapped_column(String(16), primary_key=True)
    hands_played: Mapped[int] = mapped_column(BigInteger)
    # Sum of (stack after - stack before): what the player's chips grew by, rake already taken out.
    net_winnings: Mapped[int] = mapped_column(AmountType)
    rake_paid: Mapped[int] = mapped_column(AmountType)
    # The most chips pushed to the player in one hand (their own share of the pots, after rake).
    biggest_pot_won: Mapped[int] = mapped_column(AmountType)
