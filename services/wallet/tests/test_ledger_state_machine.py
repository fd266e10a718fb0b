"""A hypothesis state machine against the real Postgres, through the domain layer (``execute``).

A plain-Python model follows every operation: open, transfer, hold, post (all or part), void, expire,
a linked batch with a failing member, retries with the same id and body and with a different body.
After every step: per asset, credits equal debits (posted and pending); no account flagged
debits_must_not_exceed_credits is below zero; every account's counters equal the model's, so every
retried id had exactly one effect; the number of transfers stored equals the model's.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, invariant, rule
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from tablium_wallet.app import MIGRATIONS
from tablium_wallet.domain.errors import InsufficientFunds, InvalidTransfer, PendingTransferResolved, TransferExists
from tablium_wallet.services.accounts import open_account
from tablium_wallet.services.batch import execute
from tablium_wallet.services.expiry import expire_due
from tablium_wallet.services.transfers import Linked, NewTransfer, Operation, Outcome, Resolve, Result

from tablium_kit import db, migrations
from tablium_kit.errors import ProblemError

ASSETS = ("USDT", "ETH")


@dataclass
class Model:
    counters: dict[uuid.UUID, list[int]] = field(default_factory=dict)  # dp, dpo, cp, cpo
    flagged: set[uuid.UUID] = field(default_factory=set)
    asset: dict[uuid.UUID, str] = field(default_factory=dict)
    transfers: dict[uuid.UUID, NewTransfer] = field(default_factory=dict)
    open_holds: dict[uuid.UUID, NewTransfer] = field(default_factory=dict)
    rows: int = 0

    def available(self, account: uuid.UUID) -> int:
        dp, dpo, _, cpo = self.counters[account]
        return cpo - dpo - dp

    def can(self, t: NewTransfer) -> bool:
        return t.debit_account_id not in self.flagged or self.available(t.debit_account_id) >= t.amount

    def apply(self, t: NewTransfer) -> None:
        self.transfers[t.id] = t
        self.rows += 1
        debit, credit = self.counters[t.debit_account_id], self.counters[t.credit_account_id]
        if t.pending:
            debit[0] += t.amount
            credit[2] += t.amount
            self.open_holds[t.id] = t
        else:
            debit[1] += t.amount
            credit[3] += t.amount

    def resolve(self, hold: NewTransfer, posted: int) -> None:
        del self.open_holds[hold.id]
        self.rows += 1
        debit, credit = self.counters[hold.debit_account_id], self.counters[hold.credit_account_id]
        debit[0] -= hold.amount
        credit[2] -= hold.amount
        debit[1] += posted
        credit[3] += posted


class LedgerMachine(RuleBasedStateMachine):
    sessions: async_sessionmaker[AsyncSession]
    loop: asyncio.AbstractEventLoop
    houses: dict[str, uuid.UUID]

    accounts = Bundle("accounts")
    holds = Bundle("holds")
    sent = Bundle("sent")

    def __init__(self) -> None:
        super().__init__()
        self.model = Model()
        self.now = datetime.now(UTC)
        self.run(self._clear())

    def run(self, coroutine: Awaitable[Any]) -> Any:
        return self.loop.run_until_complete(coroutine)

    async def _clear(self) -> None:
        async with self.sessions() as session, session.begin():
            await session.execute(
                text("TRUNCATE accounts, transfers, pending_transfers, limits, audit_log, outbox CASCADE")
            )

    async def _execute(self, ops: list[Operation], now: datetime | None = None) -> list[Outcome]:
        async with self.sessions() as session, session.begin():
            return await execute(session, ops, now=now or self.now)

    def one(self, op: Operation) -> Outcome:
        (outcome,) = self.run(self._execute([op]))
        return outcome

    async def _open(self, owner: str, kind: str, asset: str) -> uuid.UUID:
        async with self.sessions() as session, session.begin():
            account = await open_account(session, owner=owner, kind=kind, asset=asset)
        return account.id

    def open(self, owner: str, kind: str, asset: str) -> uuid.UUID:
        account_id = self.run(self._open(owner, kind, asset))
        self.model.counters.setdefault(account_id, [0, 0, 0, 0])
        self.model.asset[account_id] = asset
        if kind in ("player", "table_escrow"):
            self.model.flagged.add(account_id)
        return account_id

    @initialize(target=accounts)
    def house_accounts(self) -> Any:
        from hypothesis.stateful import multiple

        self.houses = {asset: self.open("house", "house_fees", asset) for asset in ASSETS}
        return multiple(*self.houses.values())

    @rule(target=accounts, asset=st.sampled_from(ASSETS), kind=st.sampled_from(["player", "table_escrow"]))
    def open_flagged(self, asset: str, kind: str) -> uuid.UUID:
        owner = f"player:{uuid.uuid4()}" if kind == "player" else f"table:{uuid.uuid4().hex[:8]}"
        return self.open(owner, kind, asset)

    def _transfer(self, debit: uuid.UUID, credit: uuid.UUID, amount: int, pending: bool) -> NewTransfer | None:
        asset = self.model.asset[debit]
        t = NewTransfer(
            uuid.uuid4(), debit, credit, amount, asset, "test", pending=pending, timeout_s=60 if pending else None
        )
        outcome = self.one(t)
        if debit == credit or self.model.asset[credit] != asset:
            assert isinstance(outcome, InvalidTransfer), outcome
            return None
        if not self.model.can(t):
            assert isinstance(outcome, InsufficientFunds), outcome
            return None
        assert isinstance(outcome, Result), outcome
        assert outcome.created
        self.model.apply(t)
        return t

    @rule(target=sent, debit=accounts, credit=accounts, amount=st.integers(1, 1_000))
    def transfer(self, debit: uuid.UUID, credit: uuid.UUID, amount: int) -> Any:
        from hypothesis.stateful import multiple

        t = self._transfer(debit, credit, amount, pending=False)
        return t if t else multiple()

    @rule(target=holds, debit=accounts, credit=accounts, amount=st.integers(1, 1_000))
    def hold(self, debit: uuid.UUID, credit: uuid.UUID, amount: int) -> Any:
        from hypothesis.stateful import multiple

        t = self._transfer(debit, credit, amount, pending=True)
        return t if t else multiple()

    @rule(hold=holds, fraction=st.sampled_from([None, 1, 2, 3]), void=st.booleans())
    def resolve(self, hold: NewTransfer, fraction: int | None, void: bool) -> None:
        posted = hold.amount if fraction is None else max(1, hold.amount // (fraction + 1))
        op = Resolve(hold.id, "void") if void else Resolve(hold.id, "post", None if fraction is None else posted)
        outcome = self.one(op)
        if hold.id not in self.model.open_holds:
            # Resolved before: the same resolution again is a replay, anything else a conflict.
            assert isinstance(outcome, (Result, PendingTransferResolved)), outcome
            if isinstance(outcome, Result):
                assert not outcome.created
            return
        assert isinstance(outcome, Result), outcome
        assert outcome.created
        self.model.resolve(hold, 0 if void else posted)

    @rule()
    def expire(self) -> None:
        expired = self.run(expire_due(self.sessions, now=self.now + timedelta(seconds=61)))
        assert expired == len(self.model.open_holds)
        for hold in list(self.model.open_holds.values()):
            self.model.resolve(hold, 0)

    @rule(debit=accounts, credit=accounts, amount=st.integers(1, 500))
    def linked_with_failing_member(self, debit: uuid.UUID, credit: uuid.UUID, amount: int) -> None:
        if debit == credit or self.model.asset[debit] != self.model.asset[credit] or debit not in self.model.flagged:
            return
        asset = self.model.asset[debit]
        good = NewTransfer(uuid.uuid4(), credit, debit, amount, asset, "test")
        # More than the debit account can have even after the good member: the batch must fail whole.
        too_much = self.model.available(debit) + amount + 1 + (amount if credit in self.model.flagged else 0)
        bad = NewTransfer(uuid.uuid4(), debit, credit, too_much, asset, "test")
        outcome = self.one(Linked((good, bad)))
        if credit in self.model.flagged and not self.model.can(good):
            assert isinstance(outcome, InsufficientFunds), outcome
        assert isinstance(outcome, ProblemError), outcome
        assert outcome.extra.get("index") in (0, 1)

    @rule(target=sent, account=accounts, amount=st.integers(1, 500))
    def linked_round_trip(self, account: uuid.UUID, amount: int) -> Any:
        from hypothesis.stateful import multiple

        asset = self.model.asset[account]
        house = self.houses[asset]
        if account == house:
            return multiple()
        # The second member spends what the first brings: it only fits because they commit together.
        fund = NewTransfer(uuid.uuid4(), house, account, amount, asset, "test")
        spend = NewTransfer(uuid.uuid4(), account, house, self.model.available(account) + amount, asset, "test")
        outcome = self.one(Linked((fund, spend)))
        assert isinstance(outcome, Result), outcome
        assert outcome.created
        assert [t.id for t in outcome.transfers] == [fund.id, spend.id]
        self.model.apply(fund)
        self.model.apply(spend)
        return multiple(fund, spend)

    @rule(t=sent)
    def retry_same_body(self, t: NewTransfer) -> None:
        outcome = self.one(t)
        assert isinstance(outcome, Result), outcome
        assert not outcome.created

    @rule(t=sent, delta=st.integers(1, 10))
    def retry_different_body(self, t: NewTransfer, delta: int) -> None:
        outcome = self.one(NewTransfer(t.id, t.debit_account_id, t.credit_account_id, t.amount + delta, t.asset, "x"))
        assert isinstance(outcome, TransferExists), outcome

    @invariant()
    def ledger_balances(self) -> None:
        rows, transfers = self.run(self._counters())
        for account_id, counters in rows.items():
            assert counters == self.model.counters[account_id], (account_id, counters, self.model.counters[account_id])
        assert transfers == self.model.rows
        for asset in ASSETS:
            members = [c for a, c in rows.items() if self.model.asset[a] == asset]
            assert sum(c[3] for c in members) == sum(c[1] for c in members)  # credits_posted = debits_posted
            assert sum(c[2] for c in members) == sum(c[0] for c in members)  # pending, likewise
        for account_id in self.model.flagged:
            dp, dpo, _, cpo = rows[account_id]
            assert dp + dpo <= cpo

    async def _counters(self) -> tuple[dict[uuid.UUID, list[int]], int]:
        async with self.sessions() as session:
            rows = await session.execute(
                text("SELECT id, debits_pending, debits_posted, credits_pending, credits_posted FROM accounts")
            )
            counters = {row[0]: list(row[1:]) for row in rows}
            transfers = (await session.execute(text("SELECT count(*) FROM transfers"))).scalar_one()
        return counters, transfers


def _run_machine(url: str) -> None:
    loop = asyncio.new_event_loop()
    engine = db.create_engine(url, pool_size=2)
    LedgerMachine.sessions = db.session_factory(engine)
    LedgerMachine.loop = loop
    try:
        test = LedgerMachine.TestCase
        test.settings = settings(
            max_examples=80,
            stateful_step_count=40,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
        test("runTest").runTest()
    finally:
        loop.run_until_complete(engine.dispose())
        loop.close()


async def test_ledger_state_machine(make_database: Callable[[str], Awaitable[str]]) -> None:
    url = await make_database("wallet_machine")
    await asyncio.to_thread(migrations.upgrade, url, MIGRATIONS)
    await asyncio.to_thread(_run_machine, url)
