"""Rebuys and add-ons: the purchase saga (docs/adr/0006-tournament-engine.md, "Rebuys and add-ons", "Sagas").

holding -hold-> held -engine says yes-> posting -post, fee, apply-> posted
                held -engine says no-> voiding -void-> voided
                            posting -engine refuses now-> refunding -refund-> refunded
holding -wallet refuses-> failed; posting -hold expired-> failed.

The row is committed before any money moves; each arrow is a compare-and-set (``db.steps.advance``)
committed on its own; the engine's steps run under the row lock, no wallet call does. A retry with the same
``request_id`` or the reconciler's ``purchase`` step (``drive``) finishes one cut short.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tablium_event.clients.wallet import PaymentRefused, transfer_id
from tablium_event.db import queries
from tablium_event.db.models import Purchase, TournamentRow
from tablium_event.db.steps import advance
from tablium_event.domain.config import TournamentConfig, TournamentRuleError
from tablium_event.domain.engine import Tournament
from tablium_event.domain.facts import apply
from tablium_event.events import entry_fee_paid, entry_fee_refunded
from tablium_event.services import clubs, engines
from tablium_event.services.context import Context, pool
from tablium_kit.errors import Conflict


async def buy(
    ctx: Context,
    session: AsyncSession,
    tournament_id: uuid.UUID,
    player_id: uuid.UUID,
    kind: str,
    request_id: uuid.UUID,
) -> Purchase:
    """A rebuy or an add-on of the player's live entry, at ``config.price(kind)`` (into the prize pool; a rebuy's
    fee then on to the house). A saga (``drive``): the row is committed first, then each step
    commits on its own; the reconciler's ``purchase`` step (``drive``) finishes one cut short.

    A retry with the same ``request_id`` — even twenty at once — finds its row (looked up under the
    row lock, so two first requests cannot both create it) and drives the same state machine, so the
    player is charged once and the engine applies the purchase once.
    """
    tid = transfer_id(tournament_id, kind, player_id, request_id)
    purchase = await session.scalar(select(Purchase).where(Purchase.transfer_id == tid))
    if purchase is None:
        purchase = await _new(ctx, session, tournament_id, player_id, kind, tid)
    purchase = await drive(ctx, session, purchase.id)
    if purchase.status in ("failed", "voided", "refunded"):
        failure = purchase.failure or f"the {kind} was refused"
        raise PaymentRefused(failure) if purchase.status == "failed" else Conflict(failure)
    return purchase


async def _new(
    ctx: Context, session: AsyncSession, tournament_id: uuid.UUID, player_id: uuid.UUID, kind: str, tid: uuid.UUID
) -> Purchase:
    """The purchase's row, written (committed) before any money moves; looked up again under the row
    lock, so two first requests of one ``request_id`` cannot both create it."""
    row = await queries.locked(session, tournament_id)
    purchase = await session.scalar(select(Purchase).where(Purchase.transfer_id == tid))
    if purchase is not None:
        await session.commit()
        return purchase
    # A club tournament's entry outlives its player's membership (its chips are in play), but buying more
    # chips for it is entering again: a member who left, was kicked or banned is refused, nothing held.
    await clubs.check_may_enter(session, row, player_id)
    if row.status != "running":
        raise Conflict("the tournament is not running")
    engine = await engines.engine_now(ctx, session, row)
    entry_id = live_entry(engine, player_id)
    refusal = refusal_of(engine, kind, entry_id)
    if refusal is not None:
        raise Conflict(refusal)
    purchase = Purchase(
        transfer_id=tid,
        tournament_id=row.id,
        player_id=player_id,
        entry_id=entry_id,
        kind=kind,
        amount=TournamentConfig.from_dict(row.config).price(kind).total,
        status="holding",
    )
    session.add(purchase)
    await session.commit()  # the row first: a hold can never exist without it
    return purchase


def refusal_of(engine: Tournament, kind: str, entry_id: int) -> str | None:
    try:
        return engine.purchase_refusal(kind, entry_id)
    except TournamentRuleError as exc:
        return str(exc)


async def drive(ctx: Context, session: AsyncSession, purchase_id: uuid.UUID) -> Purchase:
    """Move a purchase forward until it is done (posted, voided, failed, refunded); returns it then.

    Each arrow is a compare-and-set (``db.steps.advance``) committed on its own; the engine's steps run
    under the row lock, but no wallet call does (a slow wallet never stalls the tournament's hands).
    Any number of callers may drive one purchase at once: the wallet calls replay by id, and only the
    caller whose compare-and-set matches records a result. A wallet error propagates (a 502 to the
    caller); the purchase stays where it was and the next caller or the reconciler goes on from there.
    """
    while True:
        purchase = await session.scalar(
            select(Purchase).where(Purchase.id == purchase_id).execution_options(populate_existing=True)
        )
        assert purchase is not None
        await session.commit()  # no snapshot or lock kept while the wallet is called
        match purchase.status:
            case "holding":
                await _hold(ctx, session, purchase)
            case "held":
                await _decide(ctx, session, purchase)
            case "posting":
                await _post(ctx, session, purchase)
            case "voiding":
                await _void(ctx, session, purchase)
            case "refunding":
                await _refund(ctx, session, purchase)
            case _:
                return purchase


async def _context(session: AsyncSession, purchase: Purchase) -> tuple[TournamentRow, TournamentConfig]:
    row = await session.get(TournamentRow, purchase.tournament_id)
    assert row is not None
    return row, TournamentConfig.from_dict(row.config)


async def _hold(ctx: Context, session: AsyncSession, purchase: Purchase) -> None:
    """holding → held | failed: hold the price from the player's account into the pool (pending)."""
    row, config = await _context(session, purchase)
    account = purchase.player_account_id or await ctx.wallet.open_account(
        f"player:{purchase.player_id}", "player", config.asset
    )
    try:
        result = await ctx.wallet.transfer(
            purchase.transfer_id,
            debit=account,
            credit=pool(row),
            amount=purchase.amount,
            asset=config.asset,
            code=f"tournament_{purchase.kind}",
            pending=True,
            timeout_s=ctx.settings.hold_timeout_s,
            metadata={"tournament_id": str(row.id), "entry": purchase.entry_id},
        )
    except PaymentRefused as exc:
        await advance(session, Purchase, purchase.id, "holding", "failed", failure=exc.detail[:200])
        await session.commit()
        return
    # "posted"/"voided": another caller got further meanwhile; its compare-and-set won, this one does nothing.
    if result["status"] in ("pending", "posted"):
        moved = await advance(session, Purchase, purchase.id, "holding", "held", player_account_id=account)
    else:
        failure = f"the hold is {result['status']}"
        moved = await advance(session, Purchase, purchase.id, "holding", "failed", failure=failure)
    await session.commit()
    if not moved and result["status"] == "pending":
        # A refusal recorded by another caller, then funds arrived and this hold went through: free it.
        current = await session.scalar(select(Purchase.status).where(Purchase.id == purchase.id))
        await session.commit()
        if current == "failed":
            await ctx.wallet.void(purchase.transfer_id)


async def _decide(ctx: Context, session: AsyncSession, purchase: Purchase) -> None:
    """held → posting | voiding, under the row lock: the lock was let go while the wallet held the money,
    so the engine is asked again before the post (a refusal leaves nothing moved: the hold is voided)."""
    row = await queries.locked(session, purchase.tournament_id)
    if row.status != "running":
        refusal: str | None = "the tournament is not running"
    else:
        refusal = refusal_of(await engines.engine_now(ctx, session, row), purchase.kind, purchase.entry_id)
    if refusal is None:
        await advance(session, Purchase, purchase.id, "held", "posting")
    else:
        await advance(session, Purchase, purchase.id, "held", "voiding", failure=refusal[:200])
    await session.commit()


async def _post(ctx: Context, session: AsyncSession, purchase: Purchase) -> None:
    """posting → posted | refunding | failed: post the hold and the fee (no lock), then, under the row
    lock, the engine applies the purchase in the transaction that records it ``posted`` — or refuses
    it now (the window closed since the decision), and the money goes back."""
    row, config = await _context(session, purchase)
    result = await ctx.wallet.post(purchase.transfer_id)
    if result["status"] != "posted":
        await advance(session, Purchase, purchase.id, "posting", "failed", failure=f"the hold is {result['status']}")
        await session.commit()
        return
    await _fee(ctx, row, config, purchase)
    await session.commit()
    row = await queries.locked(session, purchase.tournament_id)
    status = await session.scalar(select(Purchase.status).where(Purchase.id == purchase.id))
    if status != "posting":
        await session.commit()  # another caller applied it (or gave it back) meanwhile
        return
    if row.status != "running":
        await advance(session, Purchase, purchase.id, "posting", "refunding", failure="the tournament is not running")
        await session.commit()
        return
    async with engines.fact(ctx, session, row) as engine:
        payload = {"now_ms": engines.now_ms(row, engine), "entry": purchase.entry_id}
        try:
            out = apply(engine, purchase.kind, payload)
        except TournamentRuleError as exc:
            await advance(session, Purchase, purchase.id, "posting", "refunding", failure=str(exc)[:200])
            await session.commit()  # the engine that refused is not kept (nothing recorded)
            return
        if await advance(session, Purchase, purchase.id, "posting", "posted"):
            await entry_fee_paid(
                session,
                row,
                purchase_id=purchase.id,
                kind=purchase.kind,
                player_id=purchase.player_id,
                entry_id=purchase.entry_id,
                fee=_fee_part(config, purchase),
            )
        await engines.record(ctx, session, row, engine, purchase.kind, payload, out)


async def _void(ctx: Context, session: AsyncSession, purchase: Purchase) -> None:
    """voiding → voided: the hold is let go. Only a ``held`` purchase is ever voided, and only a
    ``posting`` one ever posted, so the wallet cannot answer "posted" here."""
    result = await ctx.wallet.void(purchase.transfer_id)
    if result["status"] not in ("voided", "expired"):
        raise Conflict(f"the hold of purchase {purchase.id} is {result['status']}, not voided")
    await advance(session, Purchase, purchase.id, "voiding", "voided")
    await session.commit()


def _fee_part(config: TournamentConfig, purchase: Purchase) -> int:
    """The fee in what was charged: a purchase held before rebuys were charged their full price
    (its amount is the buy-in alone) carried none."""
    price = config.price(purchase.kind)
    return price.fee if purchase.amount == price.total else 0


async def _fee(ctx: Context, row: TournamentRow, config: TournamentConfig, purchase: Purchase) -> None:
    """A posted rebuy's fee part moves on from the pool to the house, as an entry's does. Replays are free."""
    fee = _fee_part(config, purchase)
    if fee:
        await ctx.wallet.transfer(
            transfer_id(row.id, "fee", purchase.id),
            debit=pool(row),
            credit=await ctx.house_account("house_fees", config.asset),
            amount=fee,
            asset=config.asset,
            code="tournament_fee",
            metadata={"tournament_id": str(row.id), "kind": purchase.kind},
        )


async def _refund(ctx: Context, session: AsyncSession, purchase: Purchase) -> None:
    """refunding → refunded: the price back from where each part went: pool and bounty parts from the
    pool, the fee from the house. The fee's own transfer is replayed first (free if it happened), so the
    house refunds only what it received when a purchase was cut short between its post and its fee."""
    row, config = await _context(session, purchase)
    assert purchase.player_account_id is not None
    fee = _fee_part(config, purchase)
    await _fee(ctx, row, config, purchase)
    refunds = (
        ("refund", pool(row), purchase.amount - fee),
        ("refund-fee", await ctx.house_account("house_fees", config.asset), fee),
    )
    for purpose, debit, amount in refunds:
        if amount:
            await ctx.wallet.transfer(
                transfer_id(row.id, purpose, purchase.id),
                debit=debit,
                credit=purchase.player_account_id,
                amount=amount,
                asset=config.asset,
                code="tournament_refund",
                metadata={"tournament_id": str(row.id), "kind": purchase.kind},
            )
    await advance(session, Purchase, purchase.id, "refunding", "refunded")
    await session.commit()


async def fee_refunded(session: AsyncSession, purchase: Purchase) -> None:
    """``event.entry_fee_refunded`` for a purchase just taken back from ``posted`` (its fee was stated paid)."""
    row, config = await _context(session, purchase)
    await entry_fee_refunded(
        session,
        row,
        purchase_id=purchase.id,
        kind=purchase.kind,
        player_id=purchase.player_id,
        entry_id=purchase.entry_id,
        fee=_fee_part(config, purchase),
    )


def live_entry(engine: Tournament, player_id: uuid.UUID) -> int:
    live = [e for e in engine.by_player.get(str(player_id), []) if not engine.entries[e].busted]
    if not live:
        raise Conflict("you have no live entry in this tournament")
    return live[-1]
