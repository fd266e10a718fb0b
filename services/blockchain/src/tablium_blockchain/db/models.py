"""Tables of the blockchain service: token contracts, deposit addresses, the watcher's cursor, deposits."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    Index,
    Integer,
    Sequence,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
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


class Withdrawal(Base):
    """A player's withdrawal to an address of theirs, from request to settlement.

    ``id`` = uuid5(player, Idempotency-Key): a replayed request finds its row. ``status``: requested (the
    wallet not asked yet, or not answered) -> held (the wallet holds the money: ``transfer_id``) or refused;
    held -> signed (a nonce reserved and the signed transaction stored, maybe broadcast) -> sent ->
    confirmed (the wallet posts) or failed (the wallet voids). ``tx_hash`` is the latest signed version
    (a replacement re-signs the same nonce), ``landed_tx_hash`` the one the chain mined.
    """

    __tablename__ = "withdrawals"
    __table_args__ = (
        UniqueConstraint("player_id", "idempotency_key"),
        CheckConstraint(
            "status IN ('requested', 'refused', 'held', 'signed', 'sent', 'confirmed', 'failed')", name="status_known"
        ),
        CheckConstraint("amount > 0", name="amount_positive"),
        *amount_checks("amount"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    player_id: Mapped[uuid.UUID] = mapped_column(index=True)
    idempotency_key: Mapped[str] = mapped_column(String(100))
    chain_id: Mapped[int] = mapped_column(BigInteger)
    asset: Mapped[str] = mapped_column(String(16))
    address: Mapped[str] = mapped_column(String(42))
    amount: Mapped[int] = mapped_column(AmountType)
    status: Mapped[str] = mapped_column(String(16), index=True)
    transfer_id: Mapped[uuid.UUID]
    nonce: Mapped[int | None] = mapped_column(BigInteger)
    tx_hash: Mapped[str | None] = mapped_column(String(66))
    landed_tx_hash: Mapped[str | None] = mapped_column(String(66))
    block_number: Mapped[int | None] = mapped_column(BigInteger)
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    settled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ChainTx(Base):
    """Every transaction the service signed, stored (raw bytes and hash) before it is broadcast: after a
    crash the same bytes are sent again, never a new transaction. Several versions share a nonce when a
    stuck one was replaced with higher fees; whichever the chain mines is the one. ``purpose``:
    withdrawal, filler (a 0-value self-transfer taking a nonce nothing else will), sweep, sweep_gas.
    ``refusals``: how many times the node refused these bytes (not a benign "already known"), since
    ``first_refused_at``, the last answer in ``last_refusal``: a withdrawal refused past the settings' bounds
    is failed and its nonce filled (ADR 0010)."""

    __tablename__ = "chain_txs"
    __table_args__ = (
        Index("ix_chain_txs_sender_nonce", "chain_id", "sender", "nonce"),
        *amount_checks("max_fee_per_gas", "max_priority_fee_per_gas"),
    )

    tx_hash: Mapped[str] = mapped_column(String(66), primary_key=True)
    chain_id: Mapped[int] = mapped_column(BigInteger)
    sender: Mapped[str] = mapped_column(String(42))
    nonce: Mapped[int] = mapped_column(BigInteger)
    purpose: Mapped[str] = mapped_column(String(16))
    withdrawal_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    sweep_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    raw: Mapped[str] = mapped_column(Text)
    max_fee_per_gas: Mapped[int] = mapped_column(AmountType)
    max_priority_fee_per_gas: Mapped[int] = mapped_column(AmountType)
    gas: Mapped[int] = mapped_column(BigInteger)
    signed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    refusals: Mapped[int] = mapped_column(Integer, server_default="0")
    first_refused_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_refusal: Mapped[str | None] = mapped_column(Text)


class Nonce(Base):
    """The next nonce of a sending address on a chain: reserved under this row's lock, in the transaction
    that stores the signed transaction using it."""

    __tablename__ = "nonces"

    chain_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    address: Mapped[str] = mapped_column(String(42), primary_key=True)
    next: Mapped[int] = mapped_column(BigInteger)


class WithdrawalPause(Base):
    """An admin's pause of all withdrawals (one row; absent: not paused). Requests are refused and the
    sender signs nothing new; what is on chain already is still followed to its end."""

    __tablename__ = "withdrawal_pause"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    paused: Mapped[bool]
    reason: Mapped[str] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(100))
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Sweep(Base):
    """Moving what deposits left on a deposit address to the hot wallet: one open sweep per address at a time
    (a partial unique index), its transactions signed and stored before any is sent (``chain_txs``), the
    amount read from the chain when it opens. A token sweep is preceded by the hot wallet paying the
    address's gas (``gas_tx_hash``)."""

    __tablename__ = "sweeps"
    __table_args__ = (
        CheckConstraint("status IN ('open', 'confirmed', 'failed')", name="status_known"),
        CheckConstraint("amount > 0", name="amount_positive"),
        *amount_checks("amount"),
        Index("uq_sweeps_open_address", "chain_id", "address", unique=True, postgresql_where=text("status = 'open'")),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    chain_id: Mapped[int] = mapped_column(BigInteger)
    address: Mapped[str] = mapped_column(String(42))
    asset: Mapped[str] = mapped_column(String(16))
    amount: Mapped[int] = mapped_column(AmountType)
    status: Mapped[str] = mapped_column(String(16), index=True)
    gas_tx_hash: Mapped[str | None] = mapped_column(String(66))
    tx_hash: Mapped[str] = mapped_column(String(66))
    block_number: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    settled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
