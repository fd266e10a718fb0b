"""Holding a player's money for an on-chain withdrawal (the blockchain service asks; ADR 0010).

The hold is a pending transfer player -> ``chain:<id>``'s clearing account, code ``withdrawal``, no
timeout: the blockchain service posts it (``blockchain.withdrawal_confirmed``) once the transaction is
confirmed on chain, or voids it (``blockchain.withdrawal_failed``). Before placing it the wallet applies
its own rules: a player with a negative balance in any asset (a deep reorg's debit back) may not
withdraw, and the platform's daily withdrawal limit per player and asset. A replay (the same withdrawal
id) returns the hold as it is, whatever changed since.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from tablium_kit.errors import Forbidden
from tablium_wallet.domain.accounts import player_owner
from tablium_wallet.domain.errors import LimitExceeded
from tablium_wallet.services.accounts import open_account
from tablium_wallet.services.batch import execute_one
from tablium_wallet.services.transfers import NewTransfer, TransferRecord

# Namespace of withdrawal holds' ids: uuid5(namespace, withdrawal id); the blockchain service derives the same.
WITHDRAWAL_NAMESPACE = uuid.UUID("9d4c2b1a-6e5f-4a3b-8c7d-0e1f2a3b4c5d")


class WithdrawalsFrozen(Forbidden):
    title = "Withdrawals frozen"
    slug = "withdrawals-frozen"


def hold_id(withdrawal_id: uuid.UUID) -> uuid.UUID:
    return uuid.uuid5(WITHDRAWAL_NAMESPACE, str(withdrawal_id))


# Both accounts locked in id order, as the ledger locks them: the checks below and the hold see one state.
_LOCK = text("SELECT id FROM accounts WHERE id = ANY(CAST(:ids AS uuid[])) ORDER BY id FOR UPDATE")
_EXISTS = text("SELECT EXISTS (SELECT FROM transfers WHERE id = :id)")
_OVERDRAWN = text("SELECT asset FROM accounts WHERE owner = :owner AND credits_posted < debits_posted LIMIT 1")
# Withdrawals held or posted today (a voided or expired hold gave the money back).
_WITHDRAWN_TODAY = text(
    "SELECT coalesce(sum(t.amount), 0) FROM transfers t LEFT JOIN transfers r ON r.pending_id = t.id "
    "WHERE t.debit_account_id = :account AND t.code = 'withdrawal' AND t.pending_id IS NULL "
    "AND t.created_at >= :since AND (r.id IS NULL OR r.flags & 8 = 0)"
)


async def hold_withdrawal(
    session: AsyncSession,
    *,
    withdrawal_id: uuid.UUID,
    player_id: uuid.UUID,
    chain_id: int,
    asset: str,
    amount: int,
    address: str,
    daily_limit: int | None,
    now: datetime,
) -> tuple[TransferRecord, bool]:
    """Place (or find) the withdrawal's hold; raises a problem the blockchain service shows the player."""
    owner = player_owner(player_id)
    player = await open_account(session, owner=owner, kind="player", asset=asset)
    clearing = await open_account(session, owner=f"chain:{chain_id}", kind="chain_clearing", asset=asset)
    transfer_id = hold_id(withdrawal_id)
    await session.execute(_LOCK, {"ids": [player.id, clearing.id]})
    if not await session.scalar(_EXISTS, {"id": transfer_id}):
        overdrawn = await session.scalar(_OVERDRAWN, {"owner": owner})
        if overdrawn is not None:
            raise WithdrawalsFrozen(
                f"withdrawals are frozen while the {overdrawn} balance is negative (a deposit was reversed)",
                extra={"asset": overdrawn},
            )
        if daily_limit is not None:
            since = now.replace(hour=0, minute=0, second=0, microsecond=0)
            today = int(await session.scalar(_WITHDRAWN_TODAY, {"account": player.id, "since": since}) or 0)
            if today + amount > daily_limit:
                raise LimitExceeded(
                    f"withdrawals today would reach {today + amount}, over the daily limit of {daily_limit}",
                    extra={"limit": "daily_withdrawal_limit", "transfer_id": str(transfer_id)},
                )
    result = await execute_one(
        session,
        NewTransfer(
            id=transfer_id,
            debit_account_id=player.id,
            credit_account_id=clearing.id,
            amount=amount,
            asset=asset,
            code="withdrawal",
            pending=True,
            metadata={"withdrawal_id": str(withdrawal_id), "chain_id": chain_id, "address": address},
            enforce_limits=False,
        ),
        now=now,
    )
    return result.transfers[0], result.created
