"""What the wallet does with other services' events (docs/events/wallet-consumed.md).

Each handler runs in the consumer's transaction, with the kit's inbox row: a redelivered event finds
the row and is skipped. The transfers they make also carry ids derived from the event's own facts
(uuid5), so even the same fact in a different envelope moves money once.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Literal

import msgspec
import structlog
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from tablium_kit.errors import InvalidInput, ProblemError
from tablium_kit.messaging import CloudEvent, handles_batches
from tablium_kit.messaging.consumer import Handler
from tablium_kit.money import PositiveAmount, parse_amount
from tablium_wallet.domain.accounts import player_owner
from tablium_wallet.domain.errors import PendingTransferResolved
from tablium_wallet.services.accounts import AccountRecord, open_account, record_player
from tablium_wallet.services.batch import execute, execute_one
from tablium_wallet.services.transfers import Linked, NewTransfer, Resolve

log = structlog.get_logger("tablium.wallet.events")

# Namespace of transfer ids derived from other services' facts.
EVENT_NAMESPACE = uuid.UUID("0b8a3f52-9c4e-4a8e-8f5e-6d2f6b3c9e01")


class DepositConfirmed(msgspec.Struct, kw_only=True):
    chain_id: int
    tx_hash: str
    log_index: int
    player_id: uuid.UUID
    asset: str
    amount: PositiveAmount


class DepositReverted(DepositConfirmed, kw_only=True):
    # True when the wallet had credited it: a reorganisation deeper than the confirmations (ADR 0010).
    was_confirmed: bool


class PayoutRequested(msgspec.Struct, kw_only=True):
    payout_id: uuid.UUID
    asset: str
    amount: PositiveAmount
    # Who receives it: a player (their own rakeback, or an agent's share), a club or a union.
    beneficiary_kind: Literal["player", "agent", "club", "union"] = "player"
    beneficiary_id: uuid.UUID | None = None
    # The first form of this event named the player alone.
    player_id: uuid.UUID | None = None

    def owner(self) -> tuple[str, str]:
        """The receiving account's (owner, kind)."""
        receiver = self.beneficiary_id or self.player_id
        if receiver is None:
            raise InvalidInput("a payout names its beneficiary_id (or player_id)")
        if self.beneficiary_kind in ("player", "agent"):
            return player_owner(receiver), "player"
        return f"{self.beneficiary_kind}:{receiver}", self.beneficiary_kind


class WithdrawalSettled(msgspec.Struct, kw_only=True):
    withdrawal_id: uuid.UUID
    # The pending transfer (hold) the blockchain service placed when the withdrawal was requested.
    transfer_id: uuid.UUID


class PlayerRegistered(msgspec.Struct, kw_only=True):
    player_id: uuid.UUID


def deposit_transfer_id(chain_id: int, tx_hash: str, log_index: int) -> uuid.UUID:
    """One transfer per on-chain deposit, whatever the redeliveries or envelopes."""
    return uuid.uuid5(EVENT_NAMESPACE, f"deposit:{chain_id}:{tx_hash.lower()}:{log_index}")


def deposit_reversal_id(chain_id: int, tx_hash: str, log_index: int) -> uuid.UUID:
    return uuid.uuid5(EVENT_NAMESPACE, f"deposit-reverted:{chain_id}:{tx_hash.lower()}:{log_index}")


def payout_transfer_id(payout_id: uuid.UUID) -> uuid.UUID:
    return uuid.uuid5(EVENT_NAMESPACE, f"rakeback-payout:{payout_id}")


def payout_funding_id(payout_id: uuid.UUID) -> uuid.UUID:
    return uuid.uuid5(EVENT_NAMESPACE, f"rakeback-funding:{payout_id}")


@handles_batches
async def on_deposit_confirmed(session: AsyncSession, events: Sequence[CloudEvent]) -> None:
    """Chain clearing → player, one transfer per deposit, a consumer batch's deposits in one ledger call
    (the clearing account locked once, not once per deposit). The money has arrived on chain; refusing it
    (a limit) would strand it (see the ADR). A refusal fails the batch: the consumer then handles its
    events one by one, so only the refused one is retried and dead-lettered."""
    deposits = [msgspec.convert(event.data, DepositConfirmed) for event in events]
    accounts: dict[tuple[str, str, str], AccountRecord] = {}
    transfers = []
    for deposit in deposits:
        player, clearing = await _deposit_accounts(session, deposit, accounts)
        transfers.append(
            _chain_transfer(
                deposit,
                deposit_transfer_id(deposit.chain_id, deposit.tx_hash, deposit.log_index),
                debit=clearing,
                credit=player,
                reverted=False,
            )
        )
    for outcome in await execute(session, transfers):
        if isinstance(outcome, ProblemError):
            raise outcome


async def on_deposit_reverted(session: AsyncSession, event: CloudEvent) -> None:
    """A credited deposit left the chain (a reorganisation deeper than the confirmations): the credit is
    taken back, even below zero (the money never really arrived); a negative balance freezes the player's
    withdrawals until deposits cover it (services/withdrawals.py). Before the credit: nothing to undo."""
    deposit = msgspec.convert(event.data, DepositReverted)
    if not deposit.was_confirmed:
        return
    credit_id = deposit_transfer_id(deposit.chain_id, deposit.tx_hash, deposit.log_index)
    if not await session.scalar(text("SELECT EXISTS (SELECT FROM transfers WHERE id = :id)"), {"id": credit_id}):
        # The confirmation not handled yet (delivered out of order, or dead-lettered): retried, then
        # dead-lettered itself for a human, rather than leave a credit standing that a later one would make.
        raise RuntimeError(f"deposit {deposit.tx_hash}:{deposit.log_index} reverted but not credited (yet)")
    player, clearing = await _deposit_accounts(session, deposit, {})
    reversal_id = deposit_reversal_id(deposit.chain_id, deposit.tx_hash, deposit.log_index)
    await execute_one(session, _chain_transfer(deposit, reversal_id, debit=player, credit=clearing, reverted=True))
    log.critical("a credited deposit was taken back", player_id=str(deposit.player_id), tx_hash=deposit.tx_hash)


async def _deposit_accounts(
    session: AsyncSession, deposit: DepositConfirmed, opened: dict[tuple[str, str, str], AccountRecord]
) -> tuple[AccountRecord, AccountRecord]:
    """The player's account and the chain's clearing account in the deposit's asset (opened if new)."""
    keys = (
        (player_owner(deposit.player_id), "player", deposit.asset),
        (f"chain:{deposit.chain_id}", "chain_clearing", deposit.asset),
    )
    for owner, kind, asset in keys:
        if (owner, kind, asset) not in opened:
            opened[owner, kind, asset] = await open_account(session, owner=owner, kind=kind, asset=asset)
    return opened[keys[0]], opened[keys[1]]


def _chain_transfer(
    deposit: DepositConfirmed, transfer_id: uuid.UUID, *, debit: AccountRecord, credit: AccountRecord, reverted: bool
) -> NewTransfer:
    """A deposit's credit, or its reversal (possibly below zero). Limits never apply: the chain decided."""
    return NewTransfer(
        id=transfer_id,
        debit_account_id=debit.id,
        credit_account_id=credit.id,
        amount=parse_amount(deposit.amount),
        asset=deposit.asset,
        code="deposit_reverted" if reverted else "deposit",
        metadata={"chain_id": deposit.chain_id, "tx_hash": deposit.tx_hash.lower(), "log_index": deposit.log_index},
        enforce_limits=False,
        overdraft=reverted,
    )


async def on_payout_requested(session: AsyncSession, event: CloudEvent) -> None:
    """The house rake account funds the rakeback pool and the pool pays the receiver, linked (both or
    neither), with ids derived from the payout id: a redelivery in any envelope pays once."""
    payout = msgspec.convert(event.data, PayoutRequested)
    owner, kind = payout.owner()
    receiver = await open_account(session, owner=owner, kind=kind, asset=payout.asset)
    pool = await open_account(session, owner="rakeback", kind="rakeback_pool", asset=payout.asset)
    house = await open_account(session, owner="house", kind="house_rake", asset=payout.asset)
    amount, metadata = parse_amount(payout.amount), {"payout_id": str(payout.payout_id)}
    await execute_one(
        session,
        Linked(
            (
                NewTransfer(
                    id=payout_funding_id(payout.payout_id),
                    debit_account_id=house.id,
                    credit_account_id=pool.id,
                    amount=amount,
                    asset=payout.asset,
                    code="rakeback_funding",
                    metadata=metadata,
                    enforce_limits=False,
                ),
                NewTransfer(
                    id=payout_transfer_id(payout.payout_id),
                    debit_account_id=pool.id,
                    credit_account_id=receiver.id,
                    amount=amount,
                    asset=payout.asset,
                    code="rakeback_payout",
                    metadata=metadata,
                    enforce_limits=False,
                ),
            )
        ),
    )


async def _settle_withdrawal(session: AsyncSession, event: CloudEvent, action: str) -> None:
    withdrawal = msgspec.convert(event.data, WithdrawalSettled)
    try:
        await execute_one(session, Resolve(withdrawal.transfer_id, "post" if action == "post" else "void"))
    except PendingTransferResolved as error:
        # Voiding what already expired is done; anything else (posting an expired hold) needs a human.
        if action == "void" and error.extra.get("status") in ("voided", "expired"):
            return
        raise


async def on_withdrawal_confirmed(session: AsyncSession, event: CloudEvent) -> None:
    await _settle_withdrawal(session, event, "post")


async def on_withdrawal_failed(session: AsyncSession, event: CloudEvent) -> None:
    await _settle_withdrawal(session, event, "void")


async def on_player_registered(session: AsyncSession, event: CloudEvent) -> None:
    """Every player gets a USDT account at registration, so balances show one from the start; and the
    wallet learns the player exists (admin credits go to registered players only)."""
    registered = msgspec.convert(event.data, PlayerRegistered)
    await record_player(session, registered.player_id)
    await open_account(session, owner=player_owner(registered.player_id), kind="player", asset="USDT")


HANDLERS: dict[str, Handler] = {
    "blockchain.deposit_confirmed": on_deposit_confirmed,
    "blockchain.deposit_reverted": on_deposit_reverted,
    "rakeback.payout_requested": on_payout_requested,
    "blockchain.withdrawal_confirmed": on_withdrawal_confirmed,
    "blockchain.withdrawal_failed": on_withdrawal_failed,
    "player.registered": on_player_registered,
}
