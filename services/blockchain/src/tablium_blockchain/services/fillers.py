"""The hot wallet's fillers: 0-value transfers to itself taking nonces no withdrawal will, so later ones proceed.

A nonce gets one when it is reserved in Postgres but no transaction of ours holds it (a restored backup, a
manual edit: :meth:`Fillers.fill_gaps`), or when the sender gives a withdrawal up (services/sender.py). Until
its nonce is mined, a filler is followed like a withdrawal (:meth:`Fillers.follow`): sent again if the node
forgot it, re-signed with fees raised by ``fee_bump_percent`` once it has waited ``replace_after_s`` — a
stuck filler holds every later nonce of the hot wallet.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import structlog
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tablium_blockchain.db.models import ChainTx, Nonce
from tablium_blockchain.domain.withdrawals import NATIVE_GAS, initial_fees
from tablium_blockchain.services.chain import Chain
from tablium_blockchain.services.metrics import STUCK_REPLACED
from tablium_blockchain.services.signing import (
    Fees,
    broadcast,
    bumped_fees,
    known_to_node,
    market_fees,
    replace,
    sign_and_store,
)
from tablium_blockchain.settings import BlockchainSettings

log = structlog.get_logger("tablium.blockchain.fillers")


class Fillers:
    def __init__(self, chain: Chain, sessions: async_sessionmaker[AsyncSession], settings: BlockchainSettings) -> None:
        self.chain = chain
        self.sessions = sessions
        self.settings = settings
        self.hot = chain.master.hot_wallet()

    def payload(self) -> dict[str, object]:
        return {"to": self.hot.address, "gas": NATIVE_GAS}

    async def fill_gaps(self) -> None:
        pending = int(await self.chain.w3.eth.get_transaction_count(self.hot.address, "pending"))
        async with self.sessions() as session:
            reserved = await session.get(Nonce, (self.chain.chain_id, self.hot.address))
            if reserved is None or reserved.next <= pending:
                return
            ours = set(
                await session.scalars(
                    select(func.distinct(ChainTx.nonce)).where(
                        ChainTx.chain_id == self.chain.chain_id,
                        ChainTx.sender == self.hot.address,
                        ChainTx.nonce >= pending,
                    )
                )
            )
        for nonce in [n for n in range(pending, reserved.next) if n not in ours][:10]:
            await self._fill(nonce)

    async def _fill(self, nonce: int) -> None:
        base_fee, tip = await market_fees(self.chain)
        max_fee, tip = initial_fees(base_fee=base_fee, tip=tip)
        async with self.sessions() as session, session.begin():
            # Under the nonce row's lock, as reservations are: two senders never fill the same gap twice.
            await session.get(Nonce, (self.chain.chain_id, self.hot.address), with_for_update=True)
            taken = await session.scalar(
                select(ChainTx.tx_hash).where(
                    ChainTx.chain_id == self.chain.chain_id, ChainTx.sender == self.hot.address, ChainTx.nonce == nonce
                )
            )
            if taken is not None:
                return
            filler = await sign_and_store(
                session,
                self.chain,
                self.hot,
                self.payload(),
                Fees(max_fee, tip),
                purpose="filler",
                chain_pending=0,
                nonce=nonce,
            )
        log.warning("nonce gap filled", nonce=nonce, tx_hash=filler.tx_hash)
        await broadcast(self.chain, filler, self.sessions)

    async def follow(self) -> None:
        """Fillers whose nonce is not mined yet: the latest version of each sent again or replaced."""
        mined = int(await self.chain.w3.eth.get_transaction_count(self.hot.address, "latest"))
        async with self.sessions() as session:
            rows = await session.scalars(
                select(ChainTx)
                .where(
                    ChainTx.chain_id == self.chain.chain_id,
                    ChainTx.sender == self.hot.address,
                    ChainTx.purpose == "filler",
                    ChainTx.nonce >= mined,
                )
                .order_by(ChainTx.nonce, ChainTx.signed_at)
            )
            latest = {row.nonce: row for row in rows}  # the last signed of each nonce
        for filler in latest.values():
            if not await known_to_node(self.chain, filler.tx_hash):
                await broadcast(self.chain, filler, self.sessions)
            elif datetime.now(UTC) - filler.signed_at >= timedelta(seconds=self.settings.replace_after_s):
                await self._replace(filler)

    async def _replace(self, old: ChainTx) -> None:
        fees = await bumped_fees(self.chain, old, percent=self.settings.fee_bump_percent)
        async with self.sessions() as session, session.begin():
            await session.get(Nonce, (self.chain.chain_id, self.hot.address), with_for_update=True)
            newest = await session.scalar(
                select(ChainTx.tx_hash)
                .where(
                    ChainTx.chain_id == self.chain.chain_id,
                    ChainTx.sender == self.hot.address,
                    ChainTx.nonce == old.nonce,
                )
                .order_by(ChainTx.signed_at.desc())
                .limit(1)
            )
            if newest != old.tx_hash:
                return  # replaced meanwhile
            replacement = await replace(session, self.chain, self.hot, old, fees)
        STUCK_REPLACED.labels("filler").inc()
        log.warning("stuck filler replaced", nonce=old.nonce, old=old.tx_hash, new=replacement.tx_hash)
        await broadcast(self.chain, replacement, self.sessions)
