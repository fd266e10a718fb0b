"""Ledger errors, each a problem+json a client can act on (the kit renders them)."""

from __future__ import annotations

from tablium_kit.errors import Conflict, Forbidden, InvalidInput, NotFound


class InsufficientFunds(Conflict):
    title = "Insufficient funds"
    slug = "insufficient-funds"


class LimitExceeded(Forbidden):
    title = "Limit exceeded"
    slug = "limit-exceeded"


class AccountNotFound(NotFound):
    title = "Account not found"
    slug = "account-not-found"


class PlayerNotFound(NotFound):
    title = "Player not found"
    slug = "player-not-found"


class TransferNotFound(NotFound):
    title = "Transfer not found"
    slug = "transfer-not-found"


class TransferExists(Conflict):
    """The transfer id was used before with a different body."""

    title = "Transfer id already used"
    slug = "transfer-exists"


class PendingTransferResolved(Conflict):
    """The pending transfer was already posted, voided or expired, in a way this request contradicts."""

    title = "Pending transfer already resolved"
    slug = "pending-transfer-resolved"


class InvalidTransfer(InvalidInput):
    title = "Invalid transfer"
    slug = "invalid-transfer"


class Overflow(InvalidInput):
    title = "Amount overflow"
    slug = "overflow"
