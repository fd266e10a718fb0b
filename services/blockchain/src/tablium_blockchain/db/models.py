"""Tables of the blockchain service: token contracts, deposit addresses, the watcher's cursor, deposits."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, DateTime, Integer, Sequence, String, UniqueConstraint, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from tablium_kit.db import service_metadata
from tablium_kit.messaging import messaging_tables
from tablium_kit.money import AmountType, amount_checks


class Base(DeclarativeBase):
    metadata = service_metadata()


# The outbox (events this service publishes) and inbox (events it has handled).
MESSAGING = messaging_tables(Base.metadata)

# Derivation indexes of deposit addresses: a sequence never hands out the same number twice, even to
# transactions that roll back, so an address is never given to two players.
DERIVATION_INDEX = Sequence("deposit_derivation_index", metadata=Base.metadata, start=0, minvalue=0)


class ChainToken(Base):
    """The token contract of an asset on a chain: the configured one, or the one this service deployed to a
    development chain (``genesis_hash`` tells a restarted dev node, whose state is gone, from the same one)."""

    __tablename__ = "chain_tokens"

    chain_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    asset: Mapped[str] = mapped_column(String(16), primary_key=True)
    address: Mapped[str] = mapped_column(String(42))
    genesis_hash: Mapped[str] = mapped_column(String(66))
    deployed_block: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class DepositAddress(Base):
    """A player's deposit address for one asset: derived at ``derivation_index`` from the master key."""

    __tablename__ = "deposit_addresses"
    __table_args__ = (UniqueConstraint("player_id", "asset"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    player_id: Mapped[uuid.UUID]
    asset: Mapped[str] = mapped_column(String(16))
    derivation_index: Mapped[int] = mapped_column(BigInteger, unique=True)
    # Checksummed; unique: an address belongs to one (player, asset) for ever.
    address: Mapped[str] = mapped_column(String(42), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class WatchCursor(Base):
    """The next block the watcher scans on a chain."""

    __tablename__ = "watch_cursors"

    chain_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    genesis_hash: Mapped[str] = mapped_column(String(66))
    next_block: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ScannedBlock(Base):
    """The hash of a recently scanned block, as it was when scanned: where a reorganisation forked is the
    highest of these that is still the chain's block at its height."""

    __tablename__ = "scanned_blocks"

    chain_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    number: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    hash: Mapped[str] = mapped_column(String(66))


class Deposit(Base):
    """A transfer to a deposit address, from first sight to credit (or reversal).

    Keyed as the wallet keys its credit: (chain id, tx hash, log index); a native transfer has log index -1.
    ``status``: detected -> confirmed (credited; terminal unless a reorg deeper than the confirmations
    takes it away) or detected -> reverted (its block left the chain before it was credited; seen again
    in a new block, it is detected again).
    """

    __tablename__ = "deposits"
    __table_args__ = (
        CheckConstraint("status IN ('detected', 'confirmed', 'reverted')", name="status_known"),
        CheckConstraint("amount > 0", name="amount_positive"),
        *amount_checks("amount"),
    )

    chain_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    tx_hash: Mapped[str] = mapped_column(String(66), primary_key=True)
    log_index: Mapped[int] = mapped_column(Integer, primary_key=True)
    asset: Mapped[str] = mapped_column(String(16))
    player_id: Mapped[uuid.UUID]
    address: Mapped[str] = mapped_column(String(42))
    sender: Mapped[str] = mapped_column(String(42))
    amount: Mapped[int] = mapped_column(AmountType)
    block_number: Mapped[int] = mapped_column(BigInteger, index=True)
    block_hash: Mapped[str] = mapped_column(String(66))
    status: Mapped[str] = mapped_column(String(16), index=True)
    detected_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    confirmed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    reverted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
