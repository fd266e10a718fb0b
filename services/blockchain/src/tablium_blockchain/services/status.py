"""The chain's status for operators: head, watcher lag, fees, hot-wallet balances, waiting deposits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from tablium_blockchain.db.models import Deposit, ScannedBlock, WatchCursor, Withdrawal
from tablium_blockchain.services.chain import Chain, token_contract
from tablium_blockchain.services.watcher import Watcher
from tablium_blockchain.services.withdrawal_requests import UNPAID, pause_state


@dataclass(frozen=True)
class ChainStatus:
    chain_id: int
    head_block: int
    next_block: int | None
    lag_blocks: int
    lag_s: float | None
    base_fee_per_gas: int
    max_priority_fee_per_gas: int
    hot_wallet: str
    hot_wallet_balances: dict[str, int]
    deposits_waiting: int
    oldest_waiting_deposit_at: datetime | None
    watcher_error: str | None
    withdrawals_pending: int
    withdrawals_paused: bool


async def chain_status(session: AsyncSession, chain: Chain, watcher: Watcher | None) -> ChainStatus:
    w3 = chain.w3
    head = await w3.eth.get_block("latest")
    hot = chain.master.hot_wallet().address
    balances = {"ETH": int(await w3.eth.get_balance(hot))}
    for asset in chain.tokens:
        balances[asset] = int(await token_contract(chain, asset).functions.balanceOf(hot).call())
    cursor = await session.get(WatchCursor, chain.chain_id)
    next_block = cursor.next_block if cursor is not None else None
    lag_s = None
    if next_block is not None and next_block > 0:
        scanned = await session.get(ScannedBlock, (chain.chain_id, next_block - 1))
        if scanned is not None:
            last = await w3.eth.get_block(next_block - 1)
            lag_s = max(0.0, float(head["timestamp"] - last["timestamp"]))
    waiting, oldest = (
        await session.execute(
            select(func.count(), func.min(Deposit.detected_at)).where(
                Deposit.chain_id == chain.chain_id, Deposit.status == "detected"
            )
        )
    ).one()
    return ChainStatus(
        chain_id=chain.chain_id,
        head_block=int(head["number"]),
        next_block=next_block,
        lag_blocks=max(0, int(head["number"]) - (next_block - 1)) if next_block is not None else 0,
        lag_s=lag_s,
        base_fee_per_gas=int(head.get("baseFeePerGas", 0)),
        max_priority_fee_per_gas=int(await w3.eth.max_priority_fee),
        hot_wallet=hot,
        hot_wallet_balances=balances,
        deposits_waiting=int(waiting),
        oldest_waiting_deposit_at=oldest.astimezone(UTC) if oldest is not None else None,
        watcher_error=watcher.last_error if watcher is not None else None,
        withdrawals_pending=int(
            await session.scalar(
                select(func.count()).where(Withdrawal.chain_id == chain.chain_id, Withdrawal.status.in_(UNPAID))
            )
            or 0
        ),
        withdrawals_paused=await pause_state(session) is not None,
    )
