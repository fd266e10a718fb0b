"""The withdrawal sender: signs held withdrawals from the hot wallet and follows them to their end.

One pass (:meth:`Sender.run_once`):
1. withdrawals left ``requested`` by a request that died before the wallet answered are asked again;
2. unless withdrawals are paused, ``held`` ones are signed (EIP-1559, gas estimated, the hot wallet's
   balance checked first: short, they stay held), stored, committed and only then broadcast
   (services/signing.py: sent at most once whatever crashes);
3. each ``signed``/``sent`` one is followed by its nonce: the receipt of whichever of its versions was
   mined decides, once it has ``confirmations`` blocks on a canonical block: status 1 ->
   ``blockchain.withdrawal_confirmed`` (the wallet posts the hold), status 0 or the nonce taken by a
   filler -> ``blockchain.withdrawal_failed`` (the wallet voids it). Nothing mined yet: a ``signed``
   one is broadcast (the same bytes, after a crash), one the node forgot is broadcast again, and one
   older than ``replace_after_s`` is re-signed at the same nonce with fees raised by ``fee_bump_percent``;
   a nonce mined by a transaction not ours (the key used elsewhere) fails the withdrawal; one the node keeps
   refusing (``refusals_before_failing`` times over ``refused_for_s_before_failing``: insufficient funds, a fee
   past its caps, invalid) is given up: failed, and its nonce taken by a filler at higher fees in the same
   transaction, so later nonces proceed (alerted: ``tablium_chain_withdrawals_given_up_total``);
4. nonce gaps (reserved, but no transaction of ours holds them, so every later one is stuck) are filled
   with a 0-value transfer to the hot wallet itself, and fillers are followed until mined (services/fillers.py).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tablium_blockchain import events
from tablium_blockchain.clients.wallet import Wallet
from tablium_blockchain.db.models import ChainTx, Withdrawal
from tablium_blockchain.domain.withdrawals import NATIVE_GAS, initial_fees
from tablium_blockchain.services.chain import Chain, block_hash, token_contract
from tablium_blockchain.services.fillers import Fillers
from tablium_blockchain.services.metrics import STUCK_REPLACED, WITHDRAWALS, WITHDRAWALS_GIVEN_UP, WITHDRAWALS_PENDING
from tablium_blockchain.services.signing import (
    Fees,
    broadcast,
    bumped_fees,
    crash_point,
    known_to_node,
    market_fees,
    payload_of,
    receipt,
    refused_for_good,
    replace,
    sign_and_store,
)
from tablium_blockchain.services.withdrawal_requests import ask_wallet, pause_state
from tablium_blockchain.settings import BlockchainSettings
from tablium_kit.periodic import Periodic

log = structlog.get_logger("tablium.blockchain.sender")

OUTSTANDING = ("signed", "sent")


def _hex(value: Any) -> str:
    return "0x" + bytes(value).hex()


class Sender:
    def __init__(
        self, chain: Chain, sessions: async_sessionmaker[AsyncSession], settings: BlockchainSettings, wallet: Wallet
    ) -> None:
        self.chain = chain
        self.sessions = sessions
        self.settings = settings
        self.wallet = wallet
        self.hot = chain.master.hot_wallet()
        self.fillers = Fillers(chain, sessions, settings)
        self._job = Periodic("withdrawal-sender", self.run_once, interval_s=settings.send_interval_s)

    @property
    def last_error(self) -> str | None:
        return self._job.last_error

    async def start(self) -> None:
        self._job.start()

    async def stop(self) -> None:
        await self._job.stop()

    async def run_once(self) -> None:
        await self._ask_wallet_again()
        async with self.sessions() as session:
            paused = await pause_state(session) is not None
        if not paused:
            for withdrawal in await self._with_status(("held",), order=Withdrawal.created_at):
                await self._sign(withdrawal)
        head = int(await self.chain.w3.eth.block_number)
        for withdrawal in await self._with_status(OUTSTANDING, order=Withdrawal.nonce):
            await self._follow(withdrawal, head)
        async with self.sessions() as session:
            unsettled = await session.scalar(
                select(func.count()).where(
                    Withdrawal.chain_id == self.chain.chain_id, Withdrawal.status.in_(("held", *OUTSTANDING))
                )
            )
        WITHDRAWALS_PENDING.labels(str(self.chain.chain_id)).set(int(unsettled or 0))
        await self.fillers.fill_gaps()
        await self.fillers.follow()

    async def _with_status(self, statuses: tuple[str, ...], *, order: Any) -> list[Withdrawal]:
        async with self.sessions() as session:
            rows = await session.scalars(
                select(Withdrawal)
                .where(Withdrawal.chain_id == self.chain.chain_id, Withdrawal.status.in_(statuses))
                .order_by(order)
                .limit(50)
            )
            return list(rows)

    async def _ask_wallet_again(self) -> None:
        before = datetime.now(UTC) - timedelta(seconds=self.settings.requested_retry_after_s)
        for withdrawal in await self._with_status(("requested",), order=Withdrawal.created_at):
            if withdrawal.updated_at <= before:
                try:
                    await ask_wallet(self.sessions, self.wallet, withdrawal.id)
                except Exception as exc:  # the wallet away: asked again next pass; the others go on
                    log.warning("wallet not answering", withdrawal_id=str(withdrawal.id), error=str(exc))

    # -- signing and sending -------------------------------------------------------------------------

    async def _payload(self, withdrawal: Withdrawal) -> dict[str, Any]:
        """to, value, data and gas of the withdrawal's transaction."""
        if withdrawal.asset == "ETH":
            return {"to": withdrawal.address, "value": withdrawal.amount, "gas": NATIVE_GAS}
        token = token_contract(self.chain, withdrawal.asset)
        data = token.encode_abi("transfer", args=[withdrawal.address, withdrawal.amount])
        call = {"from": self.hot.address, "to": token.address, "data": data}
        gas = int(await self.chain.w3.eth.estimate_gas(call))  # type: ignore[arg-type]
        return {"to": token.address, "data": data, "gas": gas + gas // 5}  # a margin: state moves meanwhile

    async def _can_pay(self, withdrawal: Withdrawal, tx: dict[str, Any], max_fee: int) -> bool:
        """The hot wallet's balances, less what its own transactions not mined yet will take, cover ``tx``."""
        w3 = self.chain.w3
        # The balances show a transaction only once it is mined: a block time after its send on a real chain,
        # a moment after it with automine. Counted first, so one mined meanwhile is subtracted twice (it waits
        # a pass), never missed (a withdrawal sent to revert).
        eth_owed, asset_owed = await self._unmined(withdrawal.asset)
        eth = int(await w3.eth.get_balance(self.hot.address)) - eth_owed
        if eth < int(tx.get("value", 0)) + int(tx["gas"]) * max_fee:
            return False
        if withdrawal.asset == "ETH":
            return True
        token = token_contract(self.chain, withdrawal.asset)
        return int(await token.functions.balanceOf(self.hot.address).call()) - asset_owed >= withdrawal.amount

    async def _unmined(self, asset: str) -> tuple[int, int]:
        """What the hot wallet's transactions at nonces not mined yet will still take from it: ETH (value and
        gas at most, of the costliest version of each nonce), and ``asset`` (the outstanding withdrawals')."""
        mined = int(await self.chain.w3.eth.get_transaction_count(self.hot.address, "latest"))
        async with self.sessions() as session:
            versions = await session.scalars(
                select(ChainTx).where(
                    ChainTx.chain_id == self.chain.chain_id, ChainTx.sender == self.hot.address, ChainTx.nonce >= mined
                )
            )
            costliest: dict[int, int] = {}
            for version in versions:
                cost = payload_of(version)["value"] + version.gas * version.max_fee_per_gas
                costliest[version.nonce] = max(cost, costliest.get(version.nonce, 0))
            owed = 0
            if asset != "ETH":
                owed = await session.scalar(
                    select(func.coalesce(func.sum(Withdrawal.amount), 0)).where(
                        Withdrawal.chain_id == self.chain.chain_id,
                        Withdrawal.asset == asset,
                        Withdrawal.status.in_(OUTSTANDING),
                        Withdrawal.nonce >= mined,
                    )
                )
        return sum(costliest.values()), int(owed or 0)

    async def _sign(self, withdrawal: Withdrawal) -> None:
        base_fee, tip = await market_fees(self.chain)
        max_fee, tip = initial_fees(base_fee=base_fee, tip=tip)
        try:
            tx = await self._payload(withdrawal)
        except Exception as exc:  # a token transfer the node says would revert: the hot wallet is short
            log.error("withdrawal cannot be estimated", withdrawal_id=str(withdrawal.id), error=str(exc))
            return
        if not await self._can_pay(withdrawal, tx, max_fee):
            log.error("hot wallet short: withdrawal waits", withdrawal_id=str(withdrawal.id), asset=withdrawal.asset)
            return
        pending = int(await self.chain.w3.eth.get_transaction_count(self.hot.address, "pending"))
        async with self.sessions() as session, session.begin():
            current = await session.get(Withdrawal, withdrawal.id, with_for_update=True)
            if current is None or current.status != "held" or await pause_state(session) is not None:
                return  # another sender signed it, or an admin paused meanwhile
            signed = await sign_and_store(
                session,
                self.chain,
                self.hot,
                tx,
                Fees(max_fee, tip),
                purpose="withdrawal",
                chain_pending=pending,
                withdrawal_id=withdrawal.id,
            )
            current.status, current.nonce, current.tx_hash = "signed", signed.nonce, signed.tx_hash
            current.updated_at = datetime.now(UTC)
            crash_point("signed", self.settings.crash_at)  # signed, nothing committed: nothing happened
        log.info("withdrawal signed", withdrawal_id=str(withdrawal.id), nonce=signed.nonce, tx_hash=signed.tx_hash)
        crash_point("recorded", self.settings.crash_at)  # on record, not broadcast
        await self._send(withdrawal.id, signed)

    async def _send(self, withdrawal_id: Any, tx: ChainTx) -> None:
        if not await broadcast(self.chain, tx, self.sessions):
            return
        crash_point("sent", self.settings.crash_at)  # broadcast, not recorded as sent
        await self._mark_sent(withdrawal_id, tx)

    async def _mark_sent(self, withdrawal_id: Any, tx: ChainTx) -> None:
        async with self.sessions() as session, session.begin():
            sent = await session.scalar(
                update(Withdrawal)
                .where(Withdrawal.id == withdrawal_id, Withdrawal.status == "signed")
                .values(status="sent", sent_at=datetime.now(UTC), updated_at=datetime.now(UTC))
                .returning(Withdrawal)
            )
            if sent is not None:
                await events.withdrawal_event(session, events.WITHDRAWAL_SENT, sent, tx_hash=tx.tx_hash, nonce=tx.nonce)
                WITHDRAWALS.labels(sent.asset, "sent").inc()

    # -- following them to their end -----------------------------------------------------------------

    async def _versions(self, nonce: int) -> list[ChainTx]:
        """Every transaction of ours at ``nonce``: the withdrawal's versions and any filler."""
        async with self.sessions() as session:
            rows = await session.scalars(
                select(ChainTx)
                .where(
                    ChainTx.chain_id == self.chain.chain_id, ChainTx.sender == self.hot.address, ChainTx.nonce == nonce
                )
                .order_by(ChainTx.signed_at)
            )
            return list(rows)

    async def _follow(self, withdrawal: Withdrawal, head: int) -> None:
        assert withdrawal.nonce is not None
        versions = await self._versions(withdrawal.nonce)
        for version in versions:
            mined = await receipt(self.chain, version.tx_hash)
            if mined is not None:
                await self._mined(withdrawal, version, mined, head)
                return
        required = self.settings.confirmations
        if head - required + 1 >= 0:
            settled_nonces = await self.chain.w3.eth.get_transaction_count(self.hot.address, head - required + 1)
            if settled_nonces > withdrawal.nonce:
                await self._settle(withdrawal, "failed", reason="its nonce was used by a transaction not ours")
                return
        latest = next(v for v in reversed(versions) if v.tx_hash == withdrawal.tx_hash)
        if self._refused_for_good(latest):
            await self._give_up(withdrawal, latest)
        elif withdrawal.status == "signed":
            await self._send(withdrawal.id, latest)  # after a crash: the very bytes on record
        elif not await known_to_node(self.chain, latest.tx_hash):
            await broadcast(self.chain, latest, self.sessions)  # the node lost it (a restart): the same bytes again
        elif datetime.now(UTC) - latest.signed_at >= timedelta(seconds=self.settings.replace_after_s):
            await self._replace(withdrawal, latest)

    async def _mined(self, withdrawal: Withdrawal, version: ChainTx, mined: dict[str, Any], head: int) -> None:
        if withdrawal.status == "signed":
            await self._mark_sent(withdrawal.id, version)
        number = int(mined["blockNumber"])
        if head - number + 1 < self.settings.confirmations:
            return
        if await block_hash(self.chain.w3, number) != _hex(mined["blockHash"]):
            return  # reorganised meanwhile: the next pass asks again
        facts = {"tx_hash": version.tx_hash, "block_number": number}
        if version.purpose == "withdrawal" and int(mined["status"]) == 1:
            await self._settle(withdrawal, "confirmed", **facts)
        else:
            reason = "reverted on chain" if version.purpose == "withdrawal" else "its nonce went to a filler"
            await self._settle(withdrawal, "failed", reason=reason, **facts)

    async def _settle(
        self,
        withdrawal: Withdrawal,
        status: str,
        *,
        reason: str | None = None,
        tx_hash: str | None = None,
        block_number: int | None = None,
        filler_for: ChainTx | None = None,
    ) -> ChainTx | None:
        """The withdrawal's end, once, with its event. ``filler_for``: its nonce is taken by a filler outbidding
        that version, signed in the same transaction (a given-up withdrawal); the filler is returned."""
        filler = None
        fees = None
        if filler_for is not None:
            fees = await bumped_fees(self.chain, filler_for, percent=self.settings.fee_bump_percent)
        async with self.sessions() as session, session.begin():
            settled = await session.scalar(
                update(Withdrawal)
                .where(Withdrawal.id == withdrawal.id, Withdrawal.status.in_(OUTSTANDING))
                .values(
                    status=status,
                    reason=reason,
                    landed_tx_hash=tx_hash,
                    block_number=block_number,
                    settled_at=datetime.now(UTC),
                    updated_at=datetime.now(UTC),
                )
                .returning(Withdrawal)
            )
            if settled is None:
                return None
            if filler_for is not None and fees is not None:
                filler = await replace(
                    session, self.chain, self.hot, filler_for, fees, purpose="filler", tx=self.fillers.payload()
                )
            kind = events.WITHDRAWAL_CONFIRMED if status == "confirmed" else events.WITHDRAWAL_FAILED
            extra = {"tx_hash": tx_hash, "block_number": block_number}
            if reason is not None:
                extra["reason"] = reason
            await events.withdrawal_event(session, kind, settled, **extra)
        WITHDRAWALS.labels(withdrawal.asset, status).inc()
        log_at = log.info if status == "confirmed" else log.error
        log_at(f"withdrawal {status}", withdrawal_id=str(withdrawal.id), tx_hash=tx_hash, reason=reason)
        return filler

    def _refused_for_good(self, tx: ChainTx) -> bool:
        return refused_for_good(
            tx, refusals=self.settings.refusals_before_failing, for_s=self.settings.refused_for_s_before_failing
        )

    async def _give_up(self, withdrawal: Withdrawal, latest: ChainTx) -> None:
        """The node keeps refusing the withdrawal's transaction: failed (the wallet voids its hold), and a filler
        outbidding it takes its nonce, so the refused bytes can never land and later nonces proceed."""
        reason = f"the node refused its transaction {latest.refusals} times: {latest.last_refusal}"
        filler = await self._settle(withdrawal, "failed", reason=reason, filler_for=latest)
        if filler is None:
            return
        WITHDRAWALS_GIVEN_UP.labels(withdrawal.asset).inc()
        log.critical(
            "withdrawal given up: the node keeps refusing it",
            withdrawal_id=str(withdrawal.id),
            nonce=latest.nonce,
            refusal=latest.last_refusal,
            filler=filler.tx_hash,
        )
        await broadcast(self.chain, filler, self.sessions)

    async def _replace(self, withdrawal: Withdrawal, old: ChainTx) -> None:
        fees = await bumped_fees(self.chain, old, percent=self.settings.fee_bump_percent)
        async with self.sessions() as session, session.begin():
            current = await session.get(Withdrawal, withdrawal.id, with_for_update=True)
            if current is None or current.status not in OUTSTANDING or current.tx_hash != old.tx_hash:
                return
            replacement = await replace(session, self.chain, self.hot, old, fees)
            current.tx_hash, current.updated_at = replacement.tx_hash, datetime.now(UTC)
        STUCK_REPLACED.labels("withdrawal").inc()
        log.warning(
            "stuck withdrawal replaced",
            withdrawal_id=str(withdrawal.id),
            nonce=old.nonce,
            old=old.tx_hash,
            new=replacement.tx_hash,
            max_fee_per_gas=fees.max_fee_per_gas,
        )
        await broadcast(self.chain, replacement, self.sessions)
