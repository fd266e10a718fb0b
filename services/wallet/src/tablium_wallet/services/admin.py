"""Admin credits and debits of a player's account: a transfer against the house adjustments account,
with the reason, and an audit entry in the same transaction."""

from __future__ import annotations

import uuid
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

from tablium_wallet.db.models import AuditEntry
from tablium_wallet.domain.accounts import player_owner
from tablium_wallet.services.accounts import check_player, open_account
from tablium_wallet.services.batch import execute_one
from tablium_wallet.services.transfers import NewTransfer, TransferRecord


async def adjust(
    session: AsyncSession,
    *,
    actor: str,
    action: Literal["credit", "debit"],
    player_id: uuid.UUID,
    asset: str,
    amount: int,
    reason: str,
    transfer_id: uuid.UUID,
) -> tuple[TransferRecord, bool]:
    await check_player(session, player_id)
    player = await open_account(session, owner=player_owner(player_id), kind="player", asset=asset)
    house = await open_account(session, owner="house", kind="house_adjustments", asset=asset)
    debit, credit = (house, player) if action == "credit" else (player, house)
    result = await execute_one(
        session,
        NewTransfer(
            id=transfer_id,
            debit_account_id=debit.id,
            credit_account_id=credit.id,
            amount=amount,
            asset=asset,
            code=f"admin_{action}",
            metadata={"reason": reason, "actor": actor},
            enforce_limits=False,
        ),
    )
    if result.created:
        session.add(
            AuditEntry(
                actor=actor,
                action=f"admin_{action}",
                account_id=player.id,
                transfer_id=transfer_id,
                amount=amount,
                asset=asset,
                reason=reason,
            )
        )
        await session.flush()
    return result.transfers[0], result.created
