"""The chain's status, for operators (role ``admin``)."""

from __future__ import annotations

from litestar import Controller, get

from tablium_blockchain.api.schemas import ChainStatusOut
from tablium_blockchain.services.runtime import ChainRuntimeDep
from tablium_blockchain.services.status import chain_status
from tablium_kit.auth import BEARER, requires_roles
from tablium_kit.deps import DbSession


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
        )
