"""A player asks to withdraw: recorded, the wallet holds the money, and the sender takes it from there.

A saga of two commits around a call (STYLE.md): (1) the withdrawal is recorded ``requested`` (id =
uuid5(player, Idempotency-Key): a replay or a parallel twin finds the same row) and committed; (2) the
wallet is asked for the hold, holding no lock (its id is derived from the withdrawal's: asked twice, it
holds once); (3) the answer is recorded: ``held`` (+ ``blockchain.withdrawal_requested``) or ``refused``.
A crash between (1) and (3) leaves ``requested``: the sender asks the wallet again later
(:func:`ask_wallet`, ``requested_retry_after_s``) and records the answer.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import structlog
from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tablium_blockchain import events
from tablium_blockchain.clients.wallet import Wallet, WithdrawalRefused
from tablium_blockchain.db.models import DepositAddress, Withdrawal, WithdrawalPause
from tablium_blockchain.domain.withdrawals import BadAddress, check_amount, checked_address, hold_id, withdrawal_id
from tablium_blockchain.services.chain import Chain, token_contract
from tablium_blockchain.settings import BlockchainSettings
from tablium_kit.errors import Conflict, NotFound, ProblemError

log = structlog.get_logger("tablium.blockchain.withdrawals")

# Withdrawals whose money has not left the hot wallet yet (mined ones are out of its balance already).
UNPAID = ("requested", "held", "signed", "sent")


class WithdrawalsPaused(Conflict):
    title = "Withdrawals paused"
    slug = "withdrawals-paused"


class HotWalletShort(Conflict):
    title = "Withdrawals of this asset are unavailable for now"
    slug = "hot-wallet-short"


class IdempotencyKeyReused(Conflict):
    title = "Idempotency-Key used for another withdrawal"
    slug = "idempotency-key-reused"


class WithdrawalNotFound(NotFound):
    title = "Withdrawal not found"
    slug = "withdrawal-not-found"


async def pause_state(session: AsyncSession) -> WithdrawalPause | None:
    pause = await session.get(WithdrawalPause, 1)
    return pause if pause is not None and pause.paused else None


async def set_pause(session: AsyncSession, *, paused: bool, reason: str, actor: str) -> WithdrawalPause:
    values = {"paused": paused, "reason": reason, "actor": actor, "changed_at": datetime.now(UTC)}
    await session.execute(
        insert(WithdrawalPause).values(id=1, **values).on_conflict_do_update(index_elements=["id"], set_=values)
    )
    state = await session.get(WithdrawalPause, 1, populate_existing=True)
    assert state is not None
    log.warning("withdrawals paused" if paused else "withdrawals resumed", actor=actor, reason=reason)
    return state


async def request_withdrawal(
    sessions: async_sessionmaker[AsyncSession],
    chain: Chain,
    wallet: Wallet,
    settings: BlockchainSettings,
    *,
    player_id: uuid.UUID,
    idempotency_key: str,
    asset: str,
    address: str,
    amount: int,
) -> tuple[Withdrawal, bool]:
    """The withdrawal (and whether this request created it); refusals raise their problem."""
    address = checked_address(address)
    check_amount(amount, asset=asset, minimum=settings.withdrawal_min, maximum=settings.withdrawal_max)
    wid = withdrawal_id(player_id, idempotency_key)
    async with sessions() as session:
        known = await session.get(Withdrawal, wid)
    if known is not None and known.status != "requested":
        _same_request(known, asset=asset, address=address, amount=amount)
        withdrawal, created = known, False  # a replay: what it is now
    else:
        if known is None:
            await _check_can_pay(sessions, chain, asset=asset, address=address, amount=amount)
        created = await _record(sessions, wid, chain.chain_id, player_id, idempotency_key, asset, address, amount)
        withdrawal = await ask_wallet(sessions, wallet, wid)
    if withdrawal.status == "refused":
        reason, _, detail = (withdrawal.reason or "refused: by the wallet").partition(": ")
        raise WithdrawalRefused(detail, extra={"reason": reason, "withdrawal_id": str(withdrawal.id)})
    return withdrawal, created


def _same_request(known: Withdrawal, *, asset: str, address: str, amount: int) -> None:
    if (known.asset, known.address, known.amount) != (asset, address, amount):
        raise IdempotencyKeyReused("this Idempotency-Key was used for a different withdrawal")


async def _check_can_pay(
    sessions: async_sessionmaker[AsyncSession], chain: Chain, *, asset: str, address: str, amount: int
) -> None:
    async with sessions() as session:
        if await pause_state(session) is not None:
            raise WithdrawalsPaused("withdrawals are paused by an operator; try again later")
        if await session.scalar(select(DepositAddress.id).where(DepositAddress.address == address)) is not None:
            raise BadAddress("that is one of this platform's deposit addresses, not an address of yours")
        owed = await session.scalar(
            select(func.coalesce(func.sum(Withdrawal.amount), 0)).where(
                Withdrawal.chain_id == chain.chain_id, Withdrawal.asset == asset, Withdrawal.status.in_(UNPAID)
            )
        )
    hot = chain.master.hot_wallet().address
    if asset == "ETH":
        balance = int(await chain.w3.eth.get_balance(hot))
    else:
        balance = int(await token_contract(chain, asset).functions.balanceOf(hot).call())
    if balance < int(owed or 0) + amount:
        log.error("hot wallet short for withdrawals", asset=asset, balance=str(balance), owed=str(owed))
        raise HotWalletShort(f"{asset} withdrawals are unavailable for now; try again later")


async def _record(
    sessions: async_sessionmaker[AsyncSession],
    wid: uuid.UUID,
    chain_id: int,
    player_id: uuid.UUID,
    idempotency_key: str,
    asset: str,
    address: str,
    amount: int,
) -> bool:
    async with sessions() as session, session.begin():
        inserted = await session.scalar(
            insert(Withdrawal)
            .values(
                id=wid,
                player_id=player_id,
                idempotency_key=idempotency_key,
                chain_id=chain_id,
                asset=asset,
                address=address,
                amount=amount,
                status="requested",
                transfer_id=hold_id(wid),
            )
            .on_conflict_do_nothing(index_elements=["id"])
            .returning(Withdrawal.id)
        )
        if inserted is None:
            known = await session.get(Withdrawal, wid)
            assert known is not None
            _same_request(known, asset=asset, address=address, amount=amount)
        return inserted is not None


async def ask_wallet(sessions: async_sessionmaker[AsyncSession], wallet: Wallet, wid: uuid.UUID) -> Withdrawal:
    """Ask the wallet for the hold of a ``requested`` withdrawal and record its answer (idempotent)."""
    async with sessions() as session:
        withdrawal = await session.get(Withdrawal, wid)
    assert withdrawal is not None
    if withdrawal.status != "requested":
        return withdrawal
    refusal: ProblemError | None = None
    try:
        await wallet.hold_withdrawal(withdrawal)
    except WithdrawalRefused as error:
        refusal = error
    async with sessions() as session, session.begin():
        changed = await session.scalar(
            update(Withdrawal)
            .where(Withdrawal.id == wid, Withdrawal.status == "requested")
            .values(
                status="refused" if refusal else "held",
                # "<why>: <detail>", why being the wallet's problem slug (insufficient-funds, ...).
                reason=f"{refusal.extra.get('reason') or 'refused'}: {refusal.detail}" if refusal else None,
                updated_at=datetime.now(UTC),
                settled_at=datetime.now(UTC) if refusal else None,
            )
            .returning(Withdrawal)
        )
        if changed is not None and refusal is None:
            await events.withdrawal_event(session, events.WITHDRAWAL_REQUESTED, changed)
        current = changed or await session.get(Withdrawal, wid)
    assert current is not None
    log.info("withdrawal answered", withdrawal_id=str(wid), status=current.status)
    return current


async def my_withdrawals(session: AsyncSession, player_id: uuid.UUID, *, limit: int) -> list[Withdrawal]:
    rows = await session.scalars(
        select(Withdrawal)
        .where(Withdrawal.player_id == player_id)
        .order_by(Withdrawal.created_at.desc(), Withdrawal.id)
        .limit(limit)
    )
    return list(rows)


async def my_withdrawal(session: AsyncSession, player_id: uuid.UUID, wid: uuid.UUID) -> Withdrawal:
    withdrawal = await session.get(Withdrawal, wid)
    if withdrawal is None or withdrawal.player_id != player_id:
        raise WithdrawalNotFound(f"no withdrawal {wid}")
    return withdrawal
