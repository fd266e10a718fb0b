"""Sweeping: what confirmed deposits left on deposit addresses goes to the hot wallet, which pays withdrawals.

A pass (:meth:`Sweeper.run_once`) follows the open sweeps, then opens new ones. Opening one, for an address
with confirmed deposits and a balance of at least ``sweep_min``, is one transaction that records the sweep
(one open per address: a partial unique index) and signs and stores what it needs (services/signing.py):
for ETH the transfer of the balance less its gas; for the token, the hot wallet's transfer of the gas to
the address, then the address's token transfer of the balance, both signed at once with the same fees
so the gas sent pays exactly. Only then is anything broadcast (the token transfer once the gas has
arrived). The amount is read from the chain, and a new sweep of an address opens only after the last one
ended: nothing is swept twice, and a crash at any point finds the very bytes on record. The keys of
deposit addresses are re-derived from the master key at their index (ADR 0010).

Sweeps move money between the platform's own addresses: the ledger does not see them (gas is a cost).
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy import and_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tablium_blockchain.db.models import ChainTx, Deposit, DepositAddress, Sweep
from tablium_blockchain.domain.withdrawals import NATIVE_GAS, initial_fees
from tablium_blockchain.services.chain import Chain, token_contract
from tablium_blockchain.services.signing import Fees, broadcast, known_to_node, market_fees, receipt, sign_and_store
from tablium_blockchain.settings import BlockchainSettings

log = structlog.get_logger("tablium.blockchain.sweeper")

# When the node cannot estimate a token transfer from an address without ETH.
TOKEN_TRANSFER_GAS = 100_000


class Sweeper:
    def __init__(self, chain: Chain, sessions: async_sessionmaker[AsyncSession], settings: BlockchainSettings) -> None:
        self.chain = chain
        self.sessions = sessions
        self.settings = settings
        self.hot = chain.master.hot_wallet()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="deposit-sweeper")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception as exc:  # the node or the database is away: the next pass retries
                log.warning("sweep pass failed", error=f"{type(exc).__name__}: {exc}")
            await asyncio.sleep(self.settings.sweep_interval_s)

    async def run_once(self) -> None:
        head = int(await self.chain.w3.eth.block_number)
        async with self.sessions() as session:
            open_sweeps = list(
                await session.scalars(
                    select(Sweep).where(Sweep.chain_id == self.chain.chain_id, Sweep.status == "open")
                )
            )
        for sweep in open_sweeps:
            await self._follow(sweep, head)
        for address, index, asset in await self._candidates():
            await self._open(address, index, asset)

    async def _candidates(self) -> list[tuple[str, int, str]]:
        """(address, derivation index, asset) with confirmed deposits and no open sweep."""
        async with self.sessions() as session:
            rows = await session.execute(
                select(DepositAddress.address, DepositAddress.derivation_index, Deposit.asset)
                .distinct()
                .join(Deposit, Deposit.address == DepositAddress.address)
                .outerjoin(
                    Sweep,
                    and_(Sweep.address == DepositAddress.address, Sweep.status == "open"),
                )
                .where(Deposit.chain_id == self.chain.chain_id, Deposit.status == "confirmed", Sweep.id.is_(None))
            )
            return [(row[0], int(row[1]), row[2]) for row in rows]

    async def _balance(self, address: str, asset: str) -> int:
        if asset == "ETH":
            return int(await self.chain.w3.eth.get_balance(address))
        return int(await token_contract(self.chain, asset).functions.balanceOf(address).call())

    async def _open(self, address: str, index: int, asset: str) -> None:
        w3 = self.chain.w3
        balance = await self._balance(address, asset)
        base_fee, tip = await market_fees(self.chain)
        fees = Fees(*initial_fees(base_fee=base_fee, tip=tip))
        minimum = self.settings.sweep_min.get(asset, 1)
        owner = self.chain.master.deposit_account(index)
        assert owner.address == address
        gas_tx: dict[str, Any] | None = None
        if asset == "ETH":
            amount = balance - NATIVE_GAS * fees.max_fee_per_gas
            tx: dict[str, Any] = {"to": self.hot.address, "value": amount, "gas": NATIVE_GAS}
        else:
            amount = balance
            token = token_contract(self.chain, asset)
            data = token.encode_abi("transfer", args=[self.hot.address, amount])
            try:
                gas = int(await w3.eth.estimate_gas({"from": address, "to": token.address, "data": data}))
                gas += gas // 5
            except Exception:  # an address without ETH: some nodes refuse to estimate
                gas = TOKEN_TRANSFER_GAS
            tx = {"to": token.address, "data": data, "gas": gas}
            short = gas * fees.max_fee_per_gas - int(await w3.eth.get_balance(address))
            if short > 0:
                gas_tx = {"to": address, "value": short, "gas": NATIVE_GAS}
        if amount < minimum:
            return
        hot_pending = int(await w3.eth.get_transaction_count(self.hot.address, "pending"))
        own_pending = int(await w3.eth.get_transaction_count(address, "pending"))
        async with self.sessions() as session, session.begin():
            sweep_id = await session.scalar(
                insert(Sweep)
                .values(
                    chain_id=self.chain.chain_id, address=address, asset=asset, amount=amount, status="open", tx_hash=""
                )
                .on_conflict_do_nothing()
                .returning(Sweep.id)
            )
            if sweep_id is None:
                return  # another pass opened one meanwhile
            funding = None
            if gas_tx is not None:
                funding = await sign_and_store(
                    session,
                    self.chain,
                    self.hot,
                    gas_tx,
                    fees,
                    purpose="sweep_gas",
                    chain_pending=hot_pending,
                    sweep_id=sweep_id,
                )
            signed = await sign_and_store(
                session, self.chain, owner, tx, fees, purpose="sweep", chain_pending=own_pending, sweep_id=sweep_id
            )
            await session.execute(
                update(Sweep)
                .where(Sweep.id == sweep_id)
                .values(tx_hash=signed.tx_hash, gas_tx_hash=funding.tx_hash if funding else None)
            )
        log.info("sweep opened", address=address, asset=asset, amount=str(amount), gas_funded=funding is not None)
        await broadcast(self.chain, funding or signed)

    async def _tx(self, tx_hash: str) -> ChainTx:
        async with self.sessions() as session:
            row = await session.get(ChainTx, tx_hash)
        assert row is not None
        return row

    async def _follow(self, sweep: Sweep, head: int) -> None:
        if sweep.gas_tx_hash:
            funded = await receipt(self.chain, sweep.gas_tx_hash)
            if funded is None:
                if not await known_to_node(self.chain, sweep.gas_tx_hash):
                    await broadcast(self.chain, await self._tx(sweep.gas_tx_hash))
                return
            if int(funded["status"]) != 1:
                await self._settle(sweep, "failed", None)
                return
        mined = await receipt(self.chain, sweep.tx_hash)
        if mined is None:
            if not await known_to_node(self.chain, sweep.tx_hash):
                await broadcast(self.chain, await self._tx(sweep.tx_hash))
            return
        number = int(mined["blockNumber"])
        if head - number + 1 >= self.settings.confirmations:
            await self._settle(sweep, "confirmed" if int(mined["status"]) == 1 else "failed", number)

    async def _settle(self, sweep: Sweep, status: str, block_number: int | None) -> None:
        async with self.sessions() as session, session.begin():
            await session.execute(
                update(Sweep)
                .where(Sweep.id == sweep.id, Sweep.status == "open")
                .values(status=status, block_number=block_number, settled_at=datetime.now(UTC))
            )
        log_at = log.info if status == "confirmed" else log.error
        log_at(f"sweep {status}", address=sweep.address, asset=sweep.asset, amount=str(sweep.amount))
