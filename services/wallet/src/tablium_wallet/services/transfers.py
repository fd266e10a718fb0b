"""What the ledger is asked to do (new transfers, linked chains, resolutions) and what it answers.

A stored transfer reads back as a :class:`TransferRecord`, its status derived from the transfer that
resolved it when it was pending (``record_from_row`` over the columns of ``db.ledger_sql.TRANSFER_COLUMNS``).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from tablium_kit.errors import ProblemError
from tablium_wallet.domain.ledger import TransferFlags

MAX_TIMEOUT_S = 30 * 24 * 3600


@dataclass(frozen=True)
class NewTransfer:
    id: uuid.UUID
    debit_account_id: uuid.UUID
    credit_account_id: uuid.UUID
    amount: int
    asset: str
    code: str
    pending: bool = False
    timeout_s: int | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    # Responsible-play limits apply to players' stakes and deposits; a confirmed on-chain deposit
    # (money that already arrived) is credited regardless.
    enforce_limits: bool = True
    # May take a player's account below zero (a credited deposit a deep reorg took back: ADR 0010).
    overdraft: bool = False


@dataclass(frozen=True)
class Linked:
    """Transfers that commit all together or not at all."""

    transfers: tuple[NewTransfer, ...]


@dataclass(frozen=True)
class Resolve:
    """Post (all or ``amount`` of) or void a pending transfer; ``expire`` is the timeout's void."""

    pending_id: uuid.UUID
    action: Literal["post", "void", "expire"]
    amount: int | None = None


Operation = NewTransfer | Linked | Resolve


@dataclass
class TransferRecord:
    """A transfer as stored, with its status derived from what resolved it (if it is pending)."""

    id: uuid.UUID
    debit_account_id: uuid.UUID
    credit_account_id: uuid.UUID
    amount: int
    asset: str
    code: str
    flags: int
    pending_id: uuid.UUID | None
    timeout_s: int | None
    expires_at: datetime | None
    metadata: dict[str, Any]
    created_at: datetime
    status: Literal["pending", "posted", "voided", "expired"]
    posted_amount: int | None = None


@dataclass(frozen=True)
class Result:
    transfers: list[TransferRecord]
    # False when every transfer already existed (an idempotent replay) or nothing changed.
    created: bool


Outcome = Result | ProblemError


def status_of(flags: int, resolution_flags: int | None) -> Literal["pending", "posted", "voided", "expired"]:
    if flags & TransferFlags.PENDING:
        if resolution_flags is None:
            return "pending"
        flags = resolution_flags
    if flags & TransferFlags.EXPIRED:
        return "expired"
    if flags & TransferFlags.VOID_PENDING_TRANSFER:
        return "voided"
    return "posted"


def record_from_row(row: Sequence[Any]) -> TransferRecord:
    # Amounts are numeric, which asyncpg decodes as Decimal: int() is exact, and Decimal arithmetic
    # (28 significant digits by default) would not be.
    amount = int(row[3])
    resolution_flags, resolution_amount = row[12], row[13]
    status = status_of(row[6], resolution_flags)
    posted = None
    if row[6] & TransferFlags.PENDING:
        posted = int(resolution_amount) if status == "posted" else None
    elif status == "posted":
        posted = amount
    return TransferRecord(
        id=row[0],
        debit_account_id=row[1],
        credit_account_id=row[2],
        amount=amount,
        asset=row[4],
        code=row[5],
        flags=row[6],
        pending_id=row[7],
        timeout_s=row[8],
        expires_at=row[9],
        metadata=json.loads(row[10]),
        created_at=row[11],
        status=status,
        posted_amount=posted,
    )
