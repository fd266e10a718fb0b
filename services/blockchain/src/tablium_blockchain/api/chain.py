"""The chain's status, for operators (role ``admin``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from litestar import Controller, get, put
from litestar.params import JSONBody

from tablium_blockchain.api.schemas import ChainStatusOut, WithdrawalPauseIn, WithdrawalPauseOut
from tablium_blockchain.services.runtime import ChainRuntimeDep
from tablium_blockchain.services.status import chain_status
from tablium_blockchain.services.withdrawal_requests import pause_state, set_pause
from tablium_kit.auth import BEARER, caller, requires_roles
from tablium_kit.deps import DbSession

if TYPE_CHECKING:  # the api layer only shapes rows the services return
    from tablium_blockchain.db.models import WithdrawalPause


class ChainController(Controller):
    path = "/api/v1/chain"
    tags = ["chain"]
    security = BEARER
    guards = [requires_roles("admin")]

    @get("/status", summary="Head, watcher lag, fees, hot-wallet balances, waiting deposits")
    async def status(self, db_session: DbSession, chain_runtime: ChainRuntimeDep) -> ChainStatusOut:
        status = await chain_status(db_session, chain_runtime.connected(), chain_runtime.watcher)
        return ChainStatusOut(
            chain_id=status.chain_id,
            head_block=status.head_block,
            next_block=status.next_block,
            lag_blocks=status.lag_blocks,
            lag_s=status.lag_s,
            base_fee_per_gas=str(status.base_fee_per_gas),
            max_priority_fee_per_gas=str(status.max_priority_fee_per_gas),
            hot_wallet=status.hot_wallet,
            # Wei and token units can pass 2^128 on a test chain's faucet account: plain decimal strings.
            hot_wallet_balances={asset: str(amount) for asset, amount in status.hot_wallet_balances.items()},
            deposits_waiting=status.deposits_waiting,
            oldest_waiting_deposit_at=status.oldest_waiting_deposit_at,
            watcher_error=status.watcher_error,
            withdrawals_pending=status.withdrawals_pending,
            withdrawals_paused=status.withdrawals_paused,
        )

    @get("/withdrawal-pause", summary="Whether withdrawals are paused")
    async def withdrawal_pause(self, db_session: DbSession) -> WithdrawalPauseOut:
        return _pause_out(await pause_state(db_session))

    @put("/withdrawal-pause", summary="Pause or resume all withdrawals (what is on chain is still followed)")
    async def set_withdrawal_pause(
        self, data: JSONBody[WithdrawalPauseIn], db_session: DbSession
    ) -> WithdrawalPauseOut:
        state = await set_pause(db_session, paused=data.paused, reason=data.reason, actor=caller().subject)
        return (
            _pause_out(state)
            if state.paused
            else WithdrawalPauseOut(paused=False, reason=state.reason, actor=state.actor, changed_at=state.changed_at)
        )


def _pause_out(state: WithdrawalPause | None) -> WithdrawalPauseOut:
    if state is None:
        return WithdrawalPauseOut(paused=False, reason=None, actor=None, changed_at=None)
    return WithdrawalPauseOut(paused=True, reason=state.reason, actor=state.actor, changed_at=state.changed_at)
