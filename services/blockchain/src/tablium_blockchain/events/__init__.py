"""Events the blockchain service publishes, through the kit's transactional outbox.

Each is written in the transaction that changes the deposit's status, so an event exists if and only if
the change does. Amounts are decimal strings in the asset's minor unit (ADR 0007); the wallet's handler
for ``deposit_confirmed`` is described in docs/events/wallet-consumed.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from tablium_blockchain.db.models import MESSAGING, Deposit, Withdrawal
from tablium_kit.messaging import Outbox
from tablium_kit.money import format_amount

DEPOSIT_DETECTED = "blockchain.deposit_detected"
DEPOSIT_CONFIRMED = "blockchain.deposit_confirmed"
DEPOSIT_REVERTED = "blockchain.deposit_reverted"
WITHDRAWAL_REQUESTED = "blockchain.withdrawal_requested"
WITHDRAWAL_SENT = "blockchain.withdrawal_sent"
WITHDRAWAL_CONFIRMED = "blockchain.withdrawal_confirmed"
WITHDRAWAL_FAILED = "blockchain.withdrawal_failed"

outbox = Outbox("blockchain", MESSAGING)


def _deposit_data(deposit: Deposit) -> dict[str, Any]:
    return {
        "chain_id": deposit.chain_id,
        "tx_hash": deposit.tx_hash,
        "log_index": deposit.log_index,
        "player_id": str(deposit.player_id),
        "asset": deposit.asset,
        "amount": format_amount(deposit.amount),
        "address": deposit.address,
        "block_number": deposit.block_number,
        "block_hash": deposit.block_hash,
    }


def _subject(deposit: Deposit) -> str:
    return f"{deposit.chain_id}:{deposit.tx_hash}:{deposit.log_index}"


async def deposit_detected(session: AsyncSession, deposit: Deposit, *, confirmations: int) -> None:
    data = {**_deposit_data(deposit), "confirmations": confirmations}
    await outbox.add(session, type=DEPOSIT_DETECTED, subject=_subject(deposit), data=data)


async def deposit_confirmed(session: AsyncSession, deposit: Deposit) -> None:
    await outbox.add(session, type=DEPOSIT_CONFIRMED, subject=_subject(deposit), data=_deposit_data(deposit))


async def deposit_reverted(session: AsyncSession, deposit: Deposit, *, was_confirmed: bool) -> None:
    # was_confirmed: the wallet had credited it (a reorganisation deeper than the confirmations).
    data = {**_deposit_data(deposit), "was_confirmed": was_confirmed}
    await outbox.add(session, type=DEPOSIT_REVERTED, subject=_subject(deposit), data=data)


def deposit_event(type_: str, deposit: Deposit, **extra: Any) -> tuple[str, str, dict[str, Any]]:
    """One DEPOSIT_* event as (type, subject, data), for :func:`add_all` (``extra``: confirmations, was_confirmed)."""
    return type_, _subject(deposit), {**_deposit_data(deposit), **extra}


async def add_all(session: AsyncSession, events: Sequence[tuple[str, str, dict[str, Any]]]) -> None:
    """Several events in one statement (a scanned range's deposits, a poll's verdicts)."""
    await outbox.add_many(session, events)


def _withdrawal_data(withdrawal: Withdrawal) -> dict[str, Any]:
    # withdrawal_id and transfer_id (the wallet's hold) are what the wallet's handlers read.
    return {
        "withdrawal_id": str(withdrawal.id),
        "transfer_id": str(withdrawal.transfer_id),
        "player_id": str(withdrawal.player_id),
        "chain_id": withdrawal.chain_id,
        "asset": withdrawal.asset,
        "amount": format_amount(withdrawal.amount),
        "address": withdrawal.address,
    }


async def withdrawal_event(session: AsyncSession, type_: str, withdrawal: Withdrawal, **extra: Any) -> None:
    """One of the WITHDRAWAL_* events, with the withdrawal's facts and ``extra`` (tx_hash, nonce, reason...)."""
    data = {**_withdrawal_data(withdrawal), **extra}
    await outbox.add(session, type=type_, subject=str(withdrawal.id), data=data)
