"""Request and response bodies. Requests reject unknown fields: a typo is an error, not a no-op."""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from tablium_kit.errors import ProblemError
from tablium_kit.inputs import exact, utc_instant
from tablium_kit.money import (
    POSITIVE_AMOUNT_VALUES,
    Amount,
    PositiveAmount,
    SignedAmount,
    format_amount,
    parse_amount,
)
from tablium_wallet.domain import limits as rules
from tablium_wallet.domain.accounts import flag_names
from tablium_wallet.domain.ledger import TransferFlags
from tablium_wallet.services.accounts import AccountRecord
from tablium_wallet.services.transfers import MAX_TIMEOUT_S, NewTransfer, Outcome, Resolve, TransferRecord

# Amounts are the kit's: unsigned 128-bit integers in the asset's minor unit, as decimal strings.
AssetCode = Annotated[str, msgspec.Meta(pattern=exact("[A-Z][A-Z0-9]{1,15}"))]
Code = Annotated[str, msgspec.Meta(pattern=exact("[a-z][a-z0-9_]{0,63}"))]
Owner = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
Kind = Literal[
    "player",
    "table_escrow",
    "prize_pool",
    "house_rake",
    "house_fees",
    "house_adjustments",
    "rakeback_pool",
    "club",
    "union",
    "chain_clearing",
]
Status = Literal["pending", "posted", "voided", "expired"]
MAX_BATCH = 256


class Request(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class OpenAccountRequest(Request):
    owner: Owner
    kind: Kind
    asset: AssetCode


class BalanceOut(msgspec.Struct, kw_only=True):
    debits_pending: Amount
    debits_posted: Amount
    credits_pending: Amount
    credits_posted: Amount
    # Derived: credits_posted - debits_posted, and that less what pending debits hold (negative for
    # the platform's side of the ledger: chain clearing, house, rakeback).
    balance: SignedAmount
    available: SignedAmount


class AccountOut(msgspec.Struct, kw_only=True):
    id: UUID
    owner: str
    kind: str
    asset: str
    flags: list[str]
    balance: BalanceOut


class TransferRequest(Request):
    id: UUID
    debit_account_id: UUID
    credit_account_id: UUID
    amount: PositiveAmount
    asset: AssetCode
    code: Code
    pending: bool = False
    timeout_s: Annotated[int, msgspec.Meta(gt=0, le=MAX_TIMEOUT_S)] | None = None
    metadata: dict[str, Any] = msgspec.field(default_factory=dict)

    def to_operation(self) -> NewTransfer:
        return NewTransfer(
            id=self.id,
            debit_account_id=self.debit_account_id,
            credit_account_id=self.credit_account_id,
            amount=parse_amount(self.amount),
            asset=self.asset,
            code=self.code,
            pending=self.pending,
            timeout_s=self.timeout_s,
            metadata=self.metadata,
        )


class LinkedRequest(Request):
    transfers: Annotated[list[TransferRequest], msgspec.Meta(min_length=1, max_length=100)]


class BatchRequest(Request):
    # Bounded also by the kit's request body limit (64 KiB: some 250 transfers without metadata).
    transfers: Annotated[list[TransferRequest], msgspec.Meta(min_length=1, max_length=MAX_BATCH)]


class PostRequest(Request):
    # None posts the whole pending amount; less releases the rest.
    amount: PositiveAmount | None = None

    def to_operation(self, pending_id: UUID) -> Resolve:
        return Resolve(pending_id, "post", None if self.amount is None else parse_amount(self.amount))


class ResolutionRequest(Request):
    """Post (all, or ``amount`` of) or void one pending transfer, as ``/transfers/{id}/post|void`` does."""

    pending_id: UUID
    action: Literal["post", "void"]
    amount: PositiveAmount | None = None

    def to_operation(self) -> Resolve:
        return Resolve(self.pending_id, self.action, None if self.amount is None else parse_amount(self.amount))


class ResolutionsRequest(Request):
    resolutions: Annotated[list[ResolutionRequest], msgspec.Meta(min_length=1, max_length=MAX_BATCH)]


class TransferOut(msgspec.Struct, kw_only=True):
    id: UUID
    debit_account_id: UUID
    credit_account_id: UUID
    amount: Amount
    asset: str
    code: str
    flags: list[str]
    pending_id: UUID | None
    timeout_s: int | None
    expires_at: datetime | None
    metadata: dict[str, Any]
    created_at: datetime
    status: Status
    posted_amount: Amount | None


class LinkedOut(msgspec.Struct, kw_only=True):
    transfers: list[TransferOut]


class BatchResultOut(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One transfer of a batch: the status it would have had alone (201 made, 200 replayed, 4xx refused),
    and the transfer or the problem."""

    status: int
    transfer: TransferOut | None = None
    problem: dict[str, Any] | None = None


class BatchOut(msgspec.Struct, kw_only=True):
    # In the order of the request's transfers.
    results: list[BatchResultOut]


class HistoryPage(msgspec.Struct, kw_only=True):
    items: list[TransferOut]
    # Pass as ?cursor= for the next (older) page; null on the last page.
    next_cursor: str | None


class Limits(Request):
    """Daily limits per asset (minor units; an asset left out has no limit) and self-exclusion."""

    daily_deposit_limit: Annotated[dict[AssetCode, PositiveAmount], POSITIVE_AMOUNT_VALUES] = msgspec.field(
        default_factory=dict
    )
    daily_loss_limit: Annotated[dict[AssetCode, PositiveAmount], POSITIVE_AMOUNT_VALUES] = msgspec.field(
        default_factory=dict
    )
    self_excluded_until: Annotated[datetime, msgspec.Meta(tz=True)] | None = None

    def __post_init__(self) -> None:
        if self.self_excluded_until is not None:
            self.self_excluded_until = utc_instant(self.self_excluded_until)

    def to_rules(self) -> rules.Limits:
        return rules.Limits(
            {asset: parse_amount(cap) for asset, cap in self.daily_deposit_limit.items()},
            {asset: parse_amount(cap) for asset, cap in self.daily_loss_limit.items()},
            self.self_excluded_until,
        )

    @classmethod
    def of(cls, limits: rules.Limits) -> Limits:
        return cls(
            daily_deposit_limit={asset: format_amount(cap) for asset, cap in limits.daily_deposit_limit.items()},
            daily_loss_limit={asset: format_amount(cap) for asset, cap in limits.daily_loss_limit.items()},
            self_excluded_until=limits.self_excluded_until,
        )


class LimitsOut(msgspec.Struct, kw_only=True):
    in_force: Limits
    # A loosening waiting for its cooling-off to end, and when it takes effect.
    scheduled: Limits | None
    scheduled_at: datetime | None
    cooling_off_s: int


class AdjustRequest(Request):
    player_id: UUID
    asset: AssetCode
    amount: PositiveAmount
    reason: Annotated[str, msgspec.Meta(min_length=3, max_length=500)]
    # Makes the adjustment idempotent: the same id is applied once.
    id: UUID | None = None


@functools.cache
def _transfer_flag_names(flags: int) -> tuple[str, ...]:
    return tuple(flag.name.lower() for flag in TransferFlags if flags & flag and flag.name)


def flag_list(flags: int) -> list[str]:
    """A transfer's flags by name (cached: a handful of combinations, named for every transfer out)."""
    return list(_transfer_flag_names(flags))


def account_out(account: AccountRecord) -> AccountOut:
    b = account.balance
    return AccountOut(
        id=account.id,
        owner=account.owner,
        kind=account.kind,
        asset=account.asset,
        flags=flag_names(account.flags),
        balance=BalanceOut(
            debits_pending=format_amount(b.debits_pending),
            debits_posted=format_amount(b.debits_posted),
            credits_pending=format_amount(b.credits_pending),
            credits_posted=format_amount(b.credits_posted),
            balance=format_amount(b.balance),
            available=format_amount(b.available),
        ),
    )


def transfer_out(t: TransferRecord) -> TransferOut:
    return TransferOut(
        id=t.id,
        debit_account_id=t.debit_account_id,
        credit_account_id=t.credit_account_id,
        amount=format_amount(t.amount),
        asset=t.asset,
        code=t.code,
        flags=flag_list(t.flags),
        pending_id=t.pending_id,
        timeout_s=t.timeout_s,
        expires_at=t.expires_at,
        metadata=t.metadata,
        created_at=t.created_at,
        status=t.status,
        posted_amount=None if t.posted_amount is None else format_amount(t.posted_amount),
    )


def problem_out(error: ProblemError) -> dict[str, Any]:
    """The problem+json body the error would have had as a response of its own (the kit's type URIs)."""
    return {
        "type": f"urn:tablium:problem:{error.slug}",
        "title": error.title,
        "status": error.status_code,
        "detail": error.detail,
        **error.extra,
    }


def resolution_result(outcome: Outcome) -> BatchResultOut:
    """One resolution of a batch: 200 and the pending transfer as it is now (as the single post/void
    answers, also for a repeated resolution), or the problem it would have had alone."""
    if isinstance(outcome, ProblemError):
        return BatchResultOut(status=outcome.status_code, problem=problem_out(outcome))
    return BatchResultOut(status=HTTP_200_OK, transfer=transfer_out(outcome.transfers[0]))


def batch_result(outcome: Outcome) -> BatchResultOut:
    if isinstance(outcome, ProblemError):
        return BatchResultOut(status=outcome.status_code, problem=problem_out(outcome))
    return BatchResultOut(
        status=HTTP_201_CREATED if outcome.created else HTTP_200_OK, transfer=transfer_out(outcome.transfers[0])
    )
