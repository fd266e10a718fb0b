"""The transfer engine: many operations in one transaction, accounts locked in id order.

``execute(session, ops)`` applies a batch of operations (new transfers, linked chains, posts, voids,
expiries) inside the caller's transaction, TigerBeetle-style:

1. lock every account the batch touches, ``SELECT ... ORDER BY id FOR UPDATE`` (one statement; a
   fixed lock order, so concurrent batches queue instead of deadlocking);
2. read the transfers the batch names (idempotent replays, pending transfers to post or void);
3. apply each operation in memory, in order, with the pure rules of :mod:`tablium_wallet.domain.ledger`:
   one that fails (insufficient funds, a limit, an unknown account...) fails alone, a linked chain
   fails whole, and neither leaves a trace but its error;
4. write everything with a handful of set-based statements: the new transfers, the pending
   transfers opened and closed, the accounts' new counters, and the events (outbox, same transaction).

The batcher in front of it (group commit) is :class:`tablium_wallet.services.ledger.Ledger`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Literal

import msgspec
from opentelemetry import propagate
from sqlalchemy.ext.asyncio import AsyncSession

from tablium_kit.errors import ProblemError
from tablium_kit.messaging.envelope import new_event
from tablium_kit.money import MAX_AMOUNT, format_amount
from tablium_wallet.db import ledger_sql as sql
from tablium_wallet.domain import limits as limit_rules
from tablium_wallet.domain.accounts import STAKE_KINDS
from tablium_wallet.domain.assets import ASSETS
from tablium_wallet.domain.errors import (
    AccountNotFound,
    InvalidTransfer,
    LimitExceeded,
    PendingTransferResolved,
    TransferExists,
    TransferNotFound,
)
from tablium_wallet.domain.ledger import Balance, TransferFlags, apply_post, apply_transfer, apply_void
from tablium_wallet.events import LIMIT_EXCEEDED, TRANSFER_POSTED, TRANSFER_VOIDED, Event, record_events
from tablium_wallet.services.limits import decode_limits
from tablium_wallet.services.transfers import (
    MAX_TIMEOUT_S,
    Linked,
    NewTransfer,
    Operation,
    Outcome,
    Resolve,
    Result,
    TransferRecord,
    record_from_row,
)

# Plain ints for the flags new transfers carry: IntFlag arithmetic is slow on the per-transfer path.
_PENDING = int(TransferFlags.PENDING)
_LINKED = int(TransferFlags.LINKED)

# Namespace of the ids the ledger derives (the transfer that posts or voids a pending one).
LEDGER_NAMESPACE = uuid.UUID("6f1c7f0e-3c1b-4a53-9a1e-1f4f6b0b7a11")


@dataclass
class _Account:
    id: uuid.UUID
    owner: str
    kind: str
    asset: str
    balance: Balance


def _members(op: Operation) -> Iterable[NewTransfer]:
    if isinstance(op, NewTransfer):
        yield op
    elif isinstance(op, Linked):
        yield from op.transfers


class Batch:
    def __init__(self, session: AsyncSession, now: datetime, *, events_in_batch: bool) -> None:
        self.session = session
        self.now = now
        # The batcher writes events in its one write statement and wakes the relay itself after the
        # commit; other callers go through the kit's Outbox, which wakes it on commit.
        self.events_in_batch = events_in_batch
        self.accounts: dict[uuid.UUID, _Account] = {}
        self.transfers: dict[uuid.UUID, TransferRecord] = {}
        self.new_rows: list[TransferRecord] = []
        self.opened: dict[uuid.UUID, datetime | None] = {}
        self.closed: list[uuid.UUID] = []
        self.touched: set[uuid.UUID] = set()
        self.events: list[Event] = []
        # Limit-exceeded events survive a failed linked chain: the refusal happened.
        self.limit_events: list[Event] = []
        self.limits: dict[str, limit_rules.Limits] = {}
        self.wrote_events = False
        self.day_totals: dict[uuid.UUID, limit_rules.DayTotals] = {}

    async def run(self, ops: Sequence[Operation]) -> list[Outcome]:
        new_ids = {t.id for op in ops for t in _members(op)}
        pending_ids = {op.pending_id for op in ops if isinstance(op, Resolve)}
        account_ids = {a for op in ops for t in _members(op) for a in (t.debit_account_id, t.credit_account_id)}
        if pending_ids:
            for _, debit, credit in await self.session.execute(sql.PENDING_ACCOUNTS, {"ids": list(pending_ids)}):
                account_ids.update((debit, credit))
        await self._lock(account_ids)
        await self._read_transfers(new_ids | pending_ids)
        await self._read_limits(ops)
        outcomes = [self._apply(op) for op in ops]
        await self._write()
        return outcomes

    # -- reads --------------------------------------------------------------------------------------

    async def _lock(self, account_ids: set[uuid.UUID]) -> None:
        if not account_ids:
            return
        rows = await self.session.execute(sql.LOCK_ACCOUNTS, {"ids": list(account_ids)})
        for row in rows:
            self.accounts[row[0]] = _Account(
                id=row[0],
                owner=row[1],
                kind=row[2],
                asset=row[3],
                balance=Balance(row[4], *map(int, row[5:9]), debits_overdraft=int(row[14])),
            )
            deposit, loss, until, scheduled, scheduled_at = row[9:14]
            if deposit is not None and row[1] not in self.limits:
                applied = limit_rules.Limits(json.loads(deposit), json.loads(loss), until)
                later = decode_limits(scheduled) if scheduled else None
                self.limits[row[1]] = limit_rules.effective(applied, later, scheduled_at, self.now)

    async def _read_transfers(self, ids: set[uuid.UUID]) -> None:
        # After the locks: whatever another transaction did to these accounts has committed.
        if ids:
            for row in await self.session.execute(sql.READ_TRANSFERS, {"ids": list(ids)}):
                self.transfers[row[0]] = record_from_row(row)

    async def _read_limits(self, ops: Sequence[Operation]) -> None:
        watched: set[uuid.UUID] = set()
        for op in ops:
            for t in _members(op):
                if t.enforce_limits and t.id not in self.transfers:
                    activity = self._activity(t)
                    if activity is not None:
                        watched.add(activity[1].id)
        if not watched:
            return
        limited = [a for a in watched if self.accounts[a].owner in self.limits]
        if not limited:
            return
        since = self.now.replace(hour=0, minute=0, second=0, microsecond=0)
        for account_id in limited:
            self.day_totals[account_id] = limit_rules.DayTotals()
        rows = await self.session.execute(sql.DAY_ACTIVITY, {"ids": limited, "since": since})
        for debit, credit, amount, flags, debit_kind, credit_kind, still_open in rows:
            if flags & (TransferFlags.VOID_PENDING_TRANSFER) or (flags & TransferFlags.PENDING and not still_open):
                continue  # released, or counted by the transfer that posted it
            self._count(debit, credit, debit_kind, credit_kind, int(amount))

    def _count(self, debit: uuid.UUID, credit: uuid.UUID, debit_kind: str, credit_kind: str, amount: int) -> None:
        if credit in self.day_totals and debit_kind == "chain_clearing":
            self.day_totals[credit].deposits += amount
        if debit in self.day_totals and credit_kind in STAKE_KINDS:
            self.day_totals[debit].staked += amount
        if credit in self.day_totals and debit_kind in STAKE_KINDS:
            self.day_totals[credit].returned += amount

    def _activity(self, t: NewTransfer) -> tuple[limit_rules.Activity, _Account] | None:
        debit, credit = self.accounts.get(t.debit_account_id), self.accounts.get(t.credit_account_id)
        if debit is None or credit is None:
            return None
        if debit.kind == "chain_clearing" and credit.kind == "player":
            return "deposit", credit
        if debit.kind == "player" and credit.kind in STAKE_KINDS:
            return "stake", debit
        return None

    # -- the rules, in memory -----------------------------------------------------------------------

    def _apply(self, op: Operation) -> Outcome:
        try:
            if isinstance(op, NewTransfer):
                record, created = self._new(op, linked=False)
                return Result([record], created)
            if isinstance(op, Linked):
                return self._linked(op)
            return self._resolve(op)
        except ProblemError as error:
            return error

    def _linked(self, op: Linked) -> Outcome:
        if not op.transfers:
            return InvalidTransfer("a linked batch needs at least one transfer")
        involved = {a for t in op.transfers for a in (t.debit_account_id, t.credit_account_id) if a in self.accounts}
        balances = {a: self.accounts[a].balance.copy() for a in involved}
        totals = {a: replace(v) for a, v in self.day_totals.items()}
        marks = (len(self.new_rows), len(self.events), set(self.touched), dict(self.opened))
        records: list[TransferRecord] = []
        created = False
        for index, member in enumerate(op.transfers):
            try:
                record, made = self._new(member, linked=index < len(op.transfers) - 1)
            except ProblemError as error:
                for account_id, balance in balances.items():
                    self.accounts[account_id].balance = balance
                self.day_totals = totals
                for row in self.new_rows[marks[0] :]:
                    self.transfers.pop(row.id, None)
                del self.new_rows[marks[0] :]
                del self.events[marks[1] :]
                self.touched, self.opened = marks[2], marks[3]
                error.extra = {**error.extra, "index": index, "transfer_id": str(member.id)}
                error.detail = f"linked transfer {index} ({member.id}) failed, so none was made: {error.detail}"
                return error
            records.append(record)
            created = created or made
        return Result(records, created)

    def _new(self, t: NewTransfer, *, linked: bool) -> tuple[TransferRecord, bool]:
        known = self.transfers.get(t.id)
        if known is not None:
            if _same(known, t):
                return known, False
            raise TransferExists(f"transfer {t.id} exists with a different body")
        if not 0 < t.amount <= MAX_AMOUNT:
            raise InvalidTransfer("amount must be a positive integer below 2^128")
        if t.asset not in ASSETS:
            raise InvalidTransfer(f"unknown asset {t.asset!r}")
        if t.debit_account_id == t.credit_account_id:
            raise InvalidTransfer("debit and credit accounts must differ")
        if t.timeout_s is not None and (not t.pending or not 0 < t.timeout_s <= MAX_TIMEOUT_S):
            raise InvalidTransfer(f"timeout_s needs pending=true and lies in 1..{MAX_TIMEOUT_S}")
        debit = self.accounts.get(t.debit_account_id)
        credit = self.accounts.get(t.credit_account_id)
        if debit is None or credit is None:
            missing = t.debit_account_id if debit is None else t.credit_account_id
            raise AccountNotFound(f"no account {missing}")
        if debit.asset != t.asset or credit.asset != t.asset:
            raise InvalidTransfer(
                f"asset mismatch: transfer in {t.asset}, debit account in {debit.asset}, "
                f"credit account in {credit.asset}"
            )
        if t.enforce_limits:
            self._check_limits(t)
        if t.overdraft and t.pending:
            raise InvalidTransfer("an overdraft is a posted transfer")
        apply_transfer(debit.balance, credit.balance, t.amount, pending=t.pending, overdraft=t.overdraft)
        flags = (_PENDING if t.pending else 0) | (_LINKED if linked else 0)
        record = TransferRecord(
            id=t.id,
            debit_account_id=debit.id,
            credit_account_id=credit.id,
            amount=t.amount,
            asset=t.asset,
            code=t.code,
            flags=flags,
            pending_id=None,
            timeout_s=t.timeout_s,
            expires_at=self.now + timedelta(seconds=t.timeout_s) if t.timeout_s else None,
            metadata=t.metadata,
            created_at=self.now,
            status="pending" if t.pending else "posted",
            posted_amount=None if t.pending else t.amount,
        )
        self._record(record, debit, credit)
        if t.pending:
            self.opened[record.id] = record.expires_at
        else:
            self.events.append(self._event(TRANSFER_POSTED, record, debit, credit))
        if debit.id in self.day_totals or credit.id in self.day_totals:
            self._count(debit.id, credit.id, debit.kind, credit.kind, t.amount)
        return record, True

    def _check_limits(self, t: NewTransfer) -> None:
        activity = self._activity(t)
        if activity is None:
            return
        what, player = activity
        rules = self.limits.get(player.owner)
        if rules is None:
            return
        totals = self.day_totals.get(player.id, limit_rules.DayTotals())
        breach = limit_rules.check(rules, what, t.asset, t.amount, totals, self.now)
        if breach is None:
            return
        self.limit_events.append(
            Event(
                LIMIT_EXCEEDED,
                player.owner,
                {
                    "owner": player.owner,
                    "account_id": str(player.id),
                    "transfer_id": str(t.id),
                    "activity": what,
                    "limit": breach.limit,
                    "limit_value": format_amount(breach.value) if isinstance(breach.value, int) else breach.value,
                    "amount": format_amount(t.amount),
                    "asset": t.asset,
                    "code": t.code,
                },
            )
        )
        raise LimitExceeded(breach.detail, extra={"limit": breach.limit, "transfer_id": str(t.id)})

    def _resolve(self, op: Resolve) -> Outcome:
        pending = self.transfers.get(op.pending_id)
        if pending is None or not pending.flags & TransferFlags.PENDING:
            return TransferNotFound(f"no pending transfer {op.pending_id}")
        if pending.status != "pending":
            done_as_asked = (
                op.action == "post" and pending.status == "posted" and op.amount in (None, pending.posted_amount)
            ) or (op.action in ("void", "expire") and pending.status in ("voided", "expired"))
            if done_as_asked:
                return Result([pending], created=False)
            return PendingTransferResolved(
                f"pending transfer {pending.id} is already {pending.status}", extra={"status": pending.status}
            )
        action = op.action
        expired = pending.expires_at is not None and pending.expires_at <= self.now
        if expired and action != "expire":
            self._close(pending, "expire", pending.amount)
            if action == "post":
                return PendingTransferResolved(
                    f"pending transfer {pending.id} expired at {pending.expires_at}", extra={"status": "expired"}
                )
            return Result([pending], created=True)
        amount = pending.amount
        if action == "post" and op.amount is not None:
            if not 0 < op.amount <= pending.amount:
                return InvalidTransfer(f"post amount must lie in 1..{pending.amount} (the pending amount)")
            amount = op.amount
        try:
            self._close(pending, action, amount)
        except ProblemError as error:
            return error
        return Result([pending], created=True)

    def _close(self, pending: TransferRecord, action: Literal["post", "void", "expire"], amount: int) -> None:
        debit = self.accounts[pending.debit_account_id]
        credit = self.accounts[pending.credit_account_id]
        if action == "post":
            apply_post(debit.balance, credit.balance, pending_amount=pending.amount, amount=amount)
            flags = TransferFlags.POST_PENDING_TRANSFER
            pending.status, pending.posted_amount = "posted", amount
        else:
            apply_void(debit.balance, credit.balance, pending_amount=pending.amount)
            flags = TransferFlags.VOID_PENDING_TRANSFER | (TransferFlags.EXPIRED if action == "expire" else 0)
            pending.status = "expired" if action == "expire" else "voided"
        resolution = TransferRecord(
            id=uuid.uuid5(LEDGER_NAMESPACE, f"resolve:{pending.id}"),
            debit_account_id=debit.id,
            credit_account_id=credit.id,
            amount=amount,
            asset=pending.asset,
            code=pending.code,
            flags=int(flags),
            pending_id=pending.id,
            timeout_s=None,
            expires_at=None,
            metadata=pending.metadata,
            created_at=self.now,
            status=pending.status,
            posted_amount=amount if action == "post" else None,
        )
        self._record(resolution, debit, credit)
        if pending.id in self.opened:
            del self.opened[pending.id]
        else:
            self.closed.append(pending.id)
        kind = TRANSFER_POSTED if action == "post" else TRANSFER_VOIDED
        self.events.append(self._event(kind, resolution, debit, credit))

    def _record(self, record: TransferRecord, debit: _Account, credit: _Account) -> None:
        self.transfers[record.id] = record
        self.new_rows.append(record)
        self.touched.update((debit.id, credit.id))

    def _event(self, kind: str, record: TransferRecord, debit: _Account, credit: _Account) -> Event:
        return Event(
            kind,
            str(record.pending_id or record.id),
            {
                "transfer_id": str(record.id),
                "pending_id": str(record.pending_id) if record.pending_id else None,
                "status": record.status,
                "debit_account_id": str(debit.id),
                "debit_owner": debit.owner,
                "debit_kind": debit.kind,
                "credit_account_id": str(credit.id),
                "credit_owner": credit.owner,
                "credit_kind": credit.kind,
                "amount": format_amount(record.amount),
                "asset": record.asset,
                "code": record.code,
                "metadata": record.metadata,
                "timestamp": record.created_at.isoformat(),
            },
        )

    # -- writes ---------------------------------------------------------------------------------------

    async def _write(self) -> None:
        rows = self.new_rows
        if not rows and not self.limit_events:
            return
        events = self.events + self.limit_events
        if not self.events_in_batch and events:
            await record_events(self.session, events)
            events = []
        changed = [self.accounts[a] for a in self.touched]
        envelopes = [new_event(service="wallet", type=e.type, subject=e.subject, data=e.data) for e in events]
        headers: dict[str, str] = {}
        propagate.inject(headers)
        await self.session.execute(
            sql.WRITE,
            {
                "now": self.now,
                "id": [r.id for r in rows],
                "debit": [r.debit_account_id for r in rows],
                "credit": [r.credit_account_id for r in rows],
                "amount": [r.amount for r in rows],
                "asset": [r.asset for r in rows],
                "code": [r.code for r in rows],
                "flags": [r.flags for r in rows],
                "pending_id": [r.pending_id for r in rows],
                "timeout": [r.timeout_s for r in rows],
                "expires": [r.expires_at for r in rows],
                "metadata": [json.dumps(r.metadata) for r in rows],
                "opened": list(self.opened),
                "opened_expires": list(self.opened.values()),
                "closed": self.closed,
                "account": [a.id for a in changed],
                "dp": [a.balance.debits_pending for a in changed],
                "dpo": [a.balance.debits_posted for a in changed],
                "cp": [a.balance.credits_pending for a in changed],
                "cpo": [a.balance.credits_posted for a in changed],
                "dov": [a.balance.debits_overdraft for a in changed],
                "event_id": [e.id for e in envelopes],
                "event_type": [e.type for e in envelopes],
                "event_subject": [e.subject for e in envelopes],
                "envelope": [msgspec.json.encode(e).decode() for e in envelopes],
                "headers": json.dumps(headers),
            },
        )
        self.wrote_events = bool(envelopes)


def _same(known: TransferRecord, t: NewTransfer) -> bool:
    return (
        not known.flags & (TransferFlags.POST_PENDING_TRANSFER | TransferFlags.VOID_PENDING_TRANSFER)
        and known.debit_account_id == t.debit_account_id
        and known.credit_account_id == t.credit_account_id
        and known.amount == t.amount
        and known.asset == t.asset
        and known.code == t.code
        and bool(known.flags & TransferFlags.PENDING) == t.pending
        and known.timeout_s == t.timeout_s
        and known.metadata == t.metadata
    )


async def execute(session: AsyncSession, ops: Sequence[Operation], *, now: datetime | None = None) -> list[Outcome]:
    """Apply ``ops`` in ``session``'s transaction; one outcome per operation, in order."""
    return await Batch(session, now or datetime.now(UTC), events_in_batch=False).run(ops)


async def execute_one(session: AsyncSession, op: Operation, *, now: datetime | None = None) -> Result:
    """Apply one operation; raise its error."""
    (outcome,) = await execute(session, [op], now=now)
    if isinstance(outcome, ProblemError):
        raise outcome
    return outcome
