"""Signing transactions that are sent at most once: a nonce reserved in Postgres, the signed bytes stored
before they are broadcast.

:func:`sign_and_store` runs inside the caller's transaction: it locks the sender's ``nonces`` row, takes
the next nonce (or the chain's pending count, if something else used the key), signs, stores the raw
transaction and its hash (``chain_txs``) and advances the row. The caller commits, then broadcasts with
:func:`broadcast`. Whatever crashes: before the commit nothing is reserved or sent; after it, the exact
bytes are on record, and sending them again is a no-op on chain (same hash). A replacement re-signs the
*same* nonce (higher fees), so of all versions at most one can be mined (:func:`replace`).

A refusal of the node other than a benign one ("already known", "nonce too low") is counted on the stored
transaction (``chain_txs.refusals``) and in ``tablium_chain_broadcast_refusals_total``: the sender gives a
withdrawal up when its transaction is refused past the settings' bounds (services/sender.py).
"""

from __future__ import annotations

import os
import signal
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from eth_account.signers.local import LocalAccount
from eth_account.typed_transactions import TypedTransaction
from eth_utils import to_checksum_address
from hexbytes import HexBytes
from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from web3.exceptions import Web3RPCError

from tablium_blockchain.db.models import ChainTx, Nonce
from tablium_blockchain.domain.withdrawals import replacement_fees
from tablium_blockchain.services.chain import Chain
from tablium_blockchain.services.metrics import BROADCAST_REFUSALS

log = structlog.get_logger("tablium.blockchain.signing")

# What nodes answer to a transaction they have (or had): sending the same bytes again did nothing.
_BENIGN = ("already known", "already imported", "known transaction", "nonce too low", "already exists")


@dataclass(frozen=True)
class Fees:
    max_fee_per_gas: int
    max_priority_fee_per_gas: int


def crash_point(step: str, crash_at: str) -> None:
    """Test hook (settings.crash_at): die here as a power cut would, with no cleanup at all: the whole
    process group (the server too, which would otherwise start another worker)."""
    if crash_at == step:
        log.warning("crashing on purpose", step=step)
        os.killpg(os.getpgrp(), signal.SIGKILL)


async def market_fees(chain: Chain) -> tuple[int, int]:
    """(base fee of the latest block, the node's suggested tip)."""
    latest = await chain.w3.eth.get_block("latest")
    return int(latest.get("baseFeePerGas", 0)), int(await chain.w3.eth.max_priority_fee)


async def sign_and_store(
    session: AsyncSession,
    chain: Chain,
    sender: LocalAccount,
    tx: dict[str, Any],
    fees: Fees,
    *,
    purpose: str,
    chain_pending: int,
    nonce: int | None = None,
    withdrawal_id: uuid.UUID | None = None,
    sweep_id: uuid.UUID | None = None,
) -> ChainTx:
    """Sign ``tx`` (to, value, data, gas) and store it, in the caller's transaction. ``nonce`` None: the next
    one is reserved; given: a replacement (or a gap's filler) at that nonce, nothing reserved."""
    if nonce is None:
        nonce = await _reserve(session, chain.chain_id, sender.address, chain_pending)
    signed = sender.sign_transaction(
        {
            "type": 2,
            "chainId": chain.chain_id,
            "nonce": nonce,
            "maxFeePerGas": fees.max_fee_per_gas,
            "maxPriorityFeePerGas": fees.max_priority_fee_per_gas,
            "value": 0,
            "data": "0x",
            **tx,
        }
    )
    row = ChainTx(
        tx_hash="0x" + bytes(signed.hash).hex(),
        chain_id=chain.chain_id,
        sender=sender.address,
        nonce=nonce,
        purpose=purpose,
        withdrawal_id=withdrawal_id,
        sweep_id=sweep_id,
        raw="0x" + bytes(signed.raw_transaction).hex(),
        max_fee_per_gas=fees.max_fee_per_gas,
        max_priority_fee_per_gas=fees.max_priority_fee_per_gas,
        gas=int(tx["gas"]),
    )
    session.add(row)
    await session.flush()
    return row


async def _reserve(session: AsyncSession, chain_id: int, address: str, chain_pending: int) -> int:
    await session.execute(
        insert(Nonce).values(chain_id=chain_id, address=address, next=chain_pending).on_conflict_do_nothing()
    )
    row = await session.scalar(
        select(Nonce).where(Nonce.chain_id == chain_id, Nonce.address == address).with_for_update()
    )
    assert row is not None
    # Past our own record when something else used the key (a deployment, an operator's transaction).
    nonce = max(row.next, chain_pending)
    row.next = nonce + 1
    return nonce


async def broadcast(chain: Chain, tx: ChainTx, sessions: async_sessionmaker[AsyncSession]) -> bool:
    """Send the stored bytes; True if the node took them now or had them (or their nonce is used: the
    receipts say by what). Any other refusal is logged, counted on the stored transaction and False: the
    next pass sends them again (or gives up: services/sender.py)."""
    try:
        await chain.w3.eth.send_raw_transaction(HexBytes(tx.raw))
    except Web3RPCError as exc:
        message = str(exc).lower()
        if any(benign in message for benign in _BENIGN):
            return True
        log.warning("broadcast refused", tx_hash=tx.tx_hash, nonce=tx.nonce, purpose=tx.purpose, error=str(exc))
        BROADCAST_REFUSALS.labels(tx.purpose).inc()
        async with sessions() as session, session.begin():
            await session.execute(
                update(ChainTx)
                .where(ChainTx.tx_hash == tx.tx_hash)
                .values(
                    refusals=ChainTx.refusals + 1,
                    first_refused_at=func.coalesce(ChainTx.first_refused_at, datetime.now(UTC)),
                    last_refusal=str(exc)[:500],
                )
            )
        return False
    return True


def refused_for_good(tx: ChainTx, *, refusals: int, for_s: float) -> bool:
    """The node has refused ``tx`` at least ``refusals`` times, over at least ``for_s`` seconds."""
    if tx.first_refused_at is None or tx.refusals < refusals:
        return False
    return datetime.now(UTC) - tx.first_refused_at >= timedelta(seconds=for_s)


def payload_of(tx: ChainTx) -> dict[str, Any]:
    """to, value, data and gas of a stored transaction, read back from its signed bytes."""
    fields = TypedTransaction.from_bytes(HexBytes(tx.raw)).as_dict()
    return {
        "to": to_checksum_address(fields["to"]),
        "value": int(fields["value"]),
        "data": "0x" + bytes(fields["data"]).hex(),
        "gas": int(fields["gas"]),
    }


async def bumped_fees(chain: Chain, old: ChainTx, *, percent: int) -> Fees:
    """Fees that outbid ``old`` by ``percent`` (nodes want >= 10 %) and at least the market's now."""
    base_fee, tip = await market_fees(chain)
    return Fees(
        *replacement_fees(
            old_max_fee=old.max_fee_per_gas,
            old_tip=old.max_priority_fee_per_gas,
            base_fee=base_fee,
            tip=tip,
            percent=percent,
        )
    )


async def replace(
    session: AsyncSession,
    chain: Chain,
    sender: LocalAccount,
    old: ChainTx,
    fees: Fees,
    *,
    value: int | None = None,
    purpose: str | None = None,
    tx: dict[str, Any] | None = None,
) -> ChainTx:
    """Re-sign ``old`` at its nonce with ``fees`` (its payload, or ``tx``; ``value`` changed if given), in the
    caller's transaction: of the versions of a nonce at most one is mined."""
    payload = tx if tx is not None else payload_of(old)
    if value is not None:
        payload = {**payload, "value": value}
    return await sign_and_store(
        session,
        chain,
        sender,
        payload,
        fees,
        purpose=purpose or old.purpose,
        chain_pending=0,
        nonce=old.nonce,
        withdrawal_id=old.withdrawal_id,
        sweep_id=old.sweep_id,
    )


async def receipt(chain: Chain, tx_hash: str) -> dict[str, Any] | None:
    try:
        found = await chain.w3.eth.get_transaction_receipt(HexBytes(tx_hash))
    except Exception as exc:  # web3 raises TransactionNotFound for an unknown or unmined hash
        if type(exc).__name__ == "TransactionNotFound":
            return None
        raise
    return dict(found)


async def known_to_node(chain: Chain, tx_hash: str) -> bool:
    try:
        await chain.w3.eth.get_transaction(HexBytes(tx_hash))
    except Exception as exc:
        if type(exc).__name__ == "TransactionNotFound":
            return False
        raise
    return True
