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

A sweep's transactions still unmined after ``replace_after_s`` are re-signed at their nonce with fees raised
by ``fee_bump_percent``, as withdrawals are (a stuck gas transfer holds every later nonce of the hot wallet):
the gas transfer keeps its value; an ETH sweep sends less by the extra gas; a token sweep needs more gas at
its address, which the hot wallet sends first (a top-up, another ``sweep_gas``). Whichever version of a
nonce is mined is the one; the sweep is settled by its sweep transaction's.

Sweeps move money between the platform's own addresses: the ledger does not see them (gas is a cost).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy import and_, delete, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tablium_blockchain.db.models import ChainTx, Deposit, DepositAddress, Nonce, Sweep
from tablium_blockchain.domain.withdrawals import NATIVE_GAS, initial_fees
from tablium_blockchain.services.chain import Chain, token_contract
from tablium_blockchain.services.metrics import STUCK_REPLACED, SWEEPS_GIVEN_UP
from tablium_blockchain.services.signing import (
    Fees,
    broadcast,
    bumped_fees,
    known_to_node,
    market_fees,
    payload_of,
    receipt,
    refused_for_good,
    replace,
    sign_and_store,
)
from tablium_blockchain.settings import BlockchainSettings
from tablium_kit.periodic import Periodic

log = structlog.get_logger("tablium.blockchain.sweeper")

# When the node cannot estimate a token transfer from an address without ETH.
TOKEN_TRANSFER_GAS = 100_000


class Sweeper:
    def __init__(self, chain: Chain, sessions: async_sessionmaker[AsyncSession], settings: BlockchainSettings) -> None:
        self.chain = chain
        self.sessions = sessions
        self.settings = settings
        self.hot = chain.master.hot_wallet()
        self._job = Periodic("deposit-sweeper", self.run_once, interval_s=settings.sweep_interval_s)

    async def start(self) -> None:
        self._job.start()

    async def stop(self) -> None:
        await self._job.stop()

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
        await broadcast(self.chain, funding or signed, self.sessions)

    async def _versions(self, sweep: Sweep) -> tuple[list[list[ChainTx]], list[ChainTx]]:
        """The sweep's gas transfers grouped by nonce (the first funding, then any top-up), each group's
        versions in signing order; and the versions of its sweep transaction."""
        async with self.sessions() as session:
            rows = list(
                await session.scalars(
                    select(ChainTx).where(ChainTx.sweep_id == sweep.id).order_by(ChainTx.nonce, ChainTx.signed_at)
                )
            )
        gas: dict[int, list[ChainTx]] = {}
        for row in rows:
            if row.purpose == "sweep_gas":
                gas.setdefault(row.nonce, []).append(row)
        return list(gas.values()), [row for row in rows if row.purpose == "sweep"]

    async def _landed(self, versions: list[ChainTx]) -> dict[str, Any] | None:
        for version in versions:
            mined = await receipt(self.chain, version.tx_hash)
            if mined is not None:
                return mined
        return None

    def _stuck(self, tx: ChainTx) -> bool:
        return (datetime.now(UTC) - tx.signed_at).total_seconds() >= self.settings.replace_after_s

    async def _follow(self, sweep: Sweep, head: int) -> None:
        gas_groups, versions = await self._versions(sweep)
        mined = await self._landed(versions)
        if mined is not None:
            number = int(mined["blockNumber"])
            if head - number + 1 >= self.settings.confirmations:
                await self._settle(sweep, "confirmed" if int(mined["status"]) == 1 else "failed", number)
            return
        for position, group in enumerate(gas_groups):
            funded = await self._landed(group)
            if funded is None:
                latest = group[-1]
                if refused_for_good(
                    latest,
                    refusals=self.settings.refusals_before_failing,
                    for_s=self.settings.refused_for_s_before_failing,
                ):
                    # The first funding: the sweep was never sent and fails; a top-up: the sweep sent before it
                    # stays open (it may still land), only the hot wallet's nonce is filled.
                    await self._give_up_gas(sweep, latest, versions if position == 0 else None)
                elif not await known_to_node(self.chain, latest.tx_hash):
                    await broadcast(self.chain, latest, self.sessions)
                elif self._stuck(latest):
                    await self._replace_gas(sweep, latest)
                return
            if int(funded["status"]) != 1:
                if position > 0:
                    await self._settle(sweep, "failed", None)
                    return
                async with self.sessions() as session, session.begin():
                    await self._fail_unsent(session, sweep, versions)
                return
        latest = versions[-1]
        if not await known_to_node(self.chain, latest.tx_hash):
            await broadcast(self.chain, latest, self.sessions)
        elif self._stuck(latest):
            await self._replace_sweep(sweep, latest)

    async def _give_up_gas(self, sweep: Sweep, latest: ChainTx, unsent: list[ChainTx] | None) -> None:
        """The node keeps refusing the hot wallet's gas transfer (it holds every later nonce of the hot wallet):
        a filler outbidding it takes its nonce (followed by the sender's fillers). ``unsent``: the sweep's own
        transaction, never sent, whose sweep fails here (:meth:`_fail_unsent`); a later pass opens a new one."""
        fees = await bumped_fees(self.chain, latest, percent=self.settings.fee_bump_percent)
        async with self.sessions() as session, session.begin():
            if not await self._still_newest(session, sweep, latest):
                return
            filler = await replace(
                session,
                self.chain,
                self.hot,
                latest,
                fees,
                purpose="filler",
                tx={"to": self.hot.address, "gas": NATIVE_GAS},
            )
            if unsent is not None:
                await self._fail_unsent(session, sweep, unsent)
        SWEEPS_GIVEN_UP.labels(sweep.asset).inc()
        log.critical(
            "sweep given up: the node keeps refusing its gas transfer",
            address=sweep.address,
            nonce=latest.nonce,
            refusal=latest.last_refusal,
            filler=filler.tx_hash,
        )
        await broadcast(self.chain, filler, self.sessions)

    async def _fail_unsent(self, session: AsyncSession, sweep: Sweep, versions: list[ChainTx]) -> None:
        """The sweep failed before its own transaction was ever sent (it is sent once its first gas transfer
        is mined): failed, its signed bytes dropped (sent nowhere, they are no transaction; the next sweep at the
        same nonce may sign the very same bytes) and the address's nonce freed for the next sweep."""
        await session.execute(
            update(Sweep)
            .where(Sweep.id == sweep.id, Sweep.status == "open")
            .values(status="failed", settled_at=datetime.now(UTC))
        )
        nonce = versions[0].nonce
        await session.execute(delete(ChainTx).where(ChainTx.tx_hash.in_([v.tx_hash for v in versions])))
        await session.execute(
            update(Nonce)
            .where(Nonce.chain_id == self.chain.chain_id, Nonce.address == sweep.address, Nonce.next == nonce + 1)
            .values(next=nonce)
        )
        log.error("sweep failed before it was sent", address=sweep.address, asset=sweep.asset)

    async def _replace_gas(self, sweep: Sweep, old: ChainTx) -> None:
        """The hot wallet's gas transfer to the address, re-signed with higher fees (the same value)."""
        fees = await bumped_fees(self.chain, old, percent=self.settings.fee_bump_percent)
        async with self.sessions() as session, session.begin():
            if not await self._still_newest(session, sweep, old):
                return
            replacement = await replace(session, self.chain, self.hot, old, fees)
            if sweep.gas_tx_hash == old.tx_hash:
                await session.execute(update(Sweep).where(Sweep.id == sweep.id).values(gas_tx_hash=replacement.tx_hash))
        STUCK_REPLACED.labels("sweep_gas").inc()
        log.warning("stuck sweep gas replaced", address=sweep.address, nonce=old.nonce, new=replacement.tx_hash)
        await broadcast(self.chain, replacement, self.sessions)

    async def _replace_sweep(self, sweep: Sweep, old: ChainTx) -> None:
        """The address's sweep re-signed with higher fees: an ETH sweep sends less by the extra gas; a token
        sweep's extra gas is sent by the hot wallet first (a top-up, broadcast now; the replacement once it
        is mined)."""
        fees = await bumped_fees(self.chain, old, percent=self.settings.fee_bump_percent)
        extra_gas = old.gas * (fees.max_fee_per_gas - old.max_fee_per_gas)
        payload = payload_of(old)
        amount = sweep.amount - extra_gas if sweep.asset == "ETH" else sweep.amount
        if amount <= 0:
            log.error("stuck sweep not worth its higher fees", address=sweep.address, asset=sweep.asset)
            return
        short = 0
        if sweep.asset != "ETH":
            short = old.gas * fees.max_fee_per_gas - int(await self.chain.w3.eth.get_balance(sweep.address))
        hot_pending = int(await self.chain.w3.eth.get_transaction_count(self.hot.address, "pending"))
        base_fee, tip = await market_fees(self.chain)
        top_up_fees = Fees(*initial_fees(base_fee=base_fee, tip=tip))
        async with self.sessions() as session, session.begin():
            if not await self._still_newest(session, sweep, old):
                return
            index = await session.scalar(
                select(DepositAddress.derivation_index).where(DepositAddress.address == sweep.address)
            )
            assert index is not None
            owner = self.chain.master.deposit_account(int(index))
            top_up = None
            if short > 0:
                top_up = await sign_and_store(
                    session,
                    self.chain,
                    self.hot,
                    {"to": sweep.address, "value": short, "gas": NATIVE_GAS},
                    top_up_fees,
                    purpose="sweep_gas",
                    chain_pending=hot_pending,
                    sweep_id=sweep.id,
                )
            value = amount if sweep.asset == "ETH" else payload["value"]
            replacement = await replace(session, self.chain, owner, old, fees, value=value)
            await session.execute(
                update(Sweep)
                .where(Sweep.id == sweep.id)
                .values(
                    tx_hash=replacement.tx_hash,
                    amount=amount,
                    gas_tx_hash=top_up.tx_hash if top_up is not None else Sweep.gas_tx_hash,
                )
            )
        STUCK_REPLACED.labels("sweep").inc()
        log.warning(
            "stuck sweep replaced",
            address=sweep.address,
            asset=sweep.asset,
            nonce=old.nonce,
            new=replacement.tx_hash,
            top_up=top_up.tx_hash if top_up is not None else None,
        )
        await broadcast(self.chain, top_up or replacement, self.sessions)

    async def _still_newest(self, session: AsyncSession, sweep: Sweep, old: ChainTx) -> bool:
        """Under the sweep's row lock: ``old`` is still the last version of its nonce (no pass replaced it)."""
        current = await session.get(Sweep, sweep.id, with_for_update=True)
        if current is None or current.status != "open":
            return False
        newest = await session.scalar(
            select(ChainTx.tx_hash)
            .where(ChainTx.chain_id == old.chain_id, ChainTx.sender == old.sender, ChainTx.nonce == old.nonce)
            .order_by(ChainTx.signed_at.desc())
            .limit(1)
        )
        return newest == old.tx_hash

    async def _settle(self, sweep: Sweep, status: str, block_number: int | None) -> None:
        async with self.sessions() as session, session.begin():
            await session.execute(
                update(Sweep)
                .where(Sweep.id == sweep.id, Sweep.status == "open")
                .values(status=status, block_number=block_number, settled_at=datetime.now(UTC))
            )
        log_at = log.info if status == "confirmed" else log.error
        log_at(f"sweep {status}", address=sweep.address, asset=sweep.asset, amount=str(sweep.amount))
