"""The double-entry rules, TigerBeetle's way: pure, no I/O.

An account's balance is derived from the transfers that touched it, kept as four counters:
``debits_pending``, ``debits_posted``, ``credits_pending``, ``credits_posted``. A transfer adds its
amount to the debit account's debits and the credit account's credits, as *pending* (a hold) or
*posted*. Posting a pending transfer moves (all or part of) it from pending to posted and releases
the rest; voiding releases all of it. Every transfer debits one account and credits another by the
same amount, so for every asset the sum of all credits equals the sum of all debits.

>>> player, table = Balance(flags=AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS), Balance()
>>> player.credits_posted = 100
>>> apply_transfer(player, table, 60, pending=True)
>>> player.available
40
>>> apply_post(player, table, pending_amount=60, amount=50)
>>> (player.balance, player.debits_pending, table.balance)
(50, 0, 50)
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntFlag

from tablium_kit.money import MAX_AMOUNT
from tablium_wallet.domain.accounts import AccountFlags
from tablium_wallet.domain.errors import InsufficientFunds, Overflow


class TransferFlags(IntFlag):
    """TigerBeetle's transfer flags, plus ``EXPIRED`` for the void made by a pending transfer's timeout."""

    LINKED = 1
    PENDING = 2
    POST_PENDING_TRANSFER = 4
    VOID_PENDING_TRANSFER = 8
    EXPIRED = 16


@dataclass(slots=True)
class Balance:
    flags: int = 0
    debits_pending: int = 0
    debits_posted: int = 0
    credits_pending: int = 0
    credits_posted: int = 0
    # What was debited past the credits by an allowed overdraft (a credited deposit a deep reorg took
    # back: ADR 0010); the database's backstop check allows it, the rules for every other debit do not.
    debits_overdraft: int = 0

    @property
    def balance(self) -> int:
        """Posted credits minus posted debits (a player's money; negative for a source like chain clearing)."""
        return self.credits_posted - self.debits_posted

    @property
    def available(self) -> int:
        """What may still be debited: the balance less what pending debits hold."""
        return self.credits_posted - self.debits_posted - self.debits_pending

    def copy(self) -> Balance:
        return Balance(
            self.flags,
            self.debits_pending,
            self.debits_posted,
            self.credits_pending,
            self.credits_posted,
            self.debits_overdraft,
        )


# Plain ints: the rules run for every transfer, and IntFlag arithmetic costs more than the rules.
_DEBITS_LIMITED = int(AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS)
_CREDITS_LIMITED = int(AccountFlags.CREDITS_MUST_NOT_EXCEED_DEBITS)


def _check(debit: Balance, debits: int, credit: Balance, credits: int, *, overdraft: int = 0) -> None:
    """Refuse new totals (``debits`` of the debit account, ``credits`` of the credit account) that overflow
    128 bits or break a flag (``overdraft``: how far past its credits the debit account may go). A counter
    never exceeds its account's total, so the totals bound them all."""
    if debits > MAX_AMOUNT:
        raise Overflow("the debit account's debits would exceed 2^128-1, the most an account can count")
    if credits > MAX_AMOUNT:
        raise Overflow("the credit account's credits would exceed 2^128-1, the most an account can count")
    if debit.flags & _DEBITS_LIMITED and debits > debit.credits_posted + overdraft:
        raise InsufficientFunds(f"insufficient funds: the debit account would be {debits - debit.credits_posted} short")
    if credit.flags & _CREDITS_LIMITED and credits > credit.debits_posted:
        raise InsufficientFunds("the credit account may not hold more credits than debits")


def apply_transfer(debit: Balance, credit: Balance, amount: int, *, pending: bool, overdraft: bool = False) -> None:
    """Apply a new transfer, or raise and leave both balances as they were.

    ``overdraft`` (posted transfers only) lets the debit account go below zero; what it goes past its
    credits is counted in ``debits_overdraft``, and until credits cover it no other debit passes.

    >>> player = Balance(flags=AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS, credits_posted=30)
    >>> apply_transfer(player, Balance(), 50, pending=False, overdraft=True)
    >>> (player.balance, player.debits_overdraft)
    (-20, 20)
    """
    debits = debit.debits_pending + debit.debits_posted + amount
    credits = credit.credits_pending + credit.credits_posted + amount
    if overdraft:
        if pending:
            raise ValueError("an overdraft is a posted transfer")
        _check(debit, debits, credit, credits, overdraft=MAX_AMOUNT)
        debit.debits_overdraft = max(debit.debits_overdraft, debits - debit.credits_posted)
    else:
        _check(debit, debits, credit, credits)
    if pending:
        debit.debits_pending += amount
        credit.credits_pending += amount
    else:
        debit.debits_posted += amount
        credit.credits_posted += amount


def apply_post(debit: Balance, credit: Balance, *, pending_amount: int, amount: int) -> None:
    """Post ``amount`` (at most ``pending_amount``) of a pending transfer; the rest is released."""
    if not 0 < amount <= pending_amount:
        raise ValueError("post amount must be positive and at most the pending amount")
    # Totals only shrink (by what is released), so this cannot fail on a ledger that held its rules (an
    # overdraft since the hold counts: a withdrawal on chain is posted even while the player is negative).
    released = pending_amount - amount
    _check(
        debit,
        debit.debits_pending + debit.debits_posted - released,
        credit,
        credit.credits_pending + credit.credits_posted - released,
        overdraft=debit.debits_overdraft,
    )
    debit.debits_pending -= pending_amount
    credit.credits_pending -= pending_amount
    debit.debits_posted += amount
    credit.credits_posted += amount


def apply_void(debit: Balance, credit: Balance, *, pending_amount: int) -> None:
    """Release a pending transfer entirely (a void, or its timeout)."""
    debit.debits_pending -= pending_amount
    credit.credits_pending -= pending_amount
