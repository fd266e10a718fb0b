"""An entry's money, step by step: the registration's hold, its post (a start's chunk), the fee, the refund.

Each step is a wallet call replayed by its transfer id and its result recorded by a compare-and-set
(``db.steps.advance``). ``take_hold``, ``refund`` and a start's chunk commit what they record (each is a
saga step: docs/adr/0006-tournament-engine.md, "Sagas"); no step holds the tournament's row lock.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tablium_event.clients.wallet import PaymentRefused, transfer_id
from tablium_event.db import queries
from tablium_event.db.models import Registration, TournamentRow
from tablium_event.db.steps import advance
from tablium_event.domain.config import TournamentConfig
from tablium_event.events import entry_fee_paid, entry_fee_refunded
from tablium_event.services.context import Context, pool


async def take_hold(ctx: Context, session: AsyncSession, row: TournamentRow, reg: Registration) -> None:
    """holding -> held | failed: hold buy-in + fee (+ bounty) from the player's account into the pool
    (pending; a freeroll takes none). Replays are free; the result is recorded by a compare-and-set and
    committed, and ``reg`` reloaded: a late answer never overwrites what another caller did since."""
    config = TournamentConfig.from_dict(row.config)
    moved: dict[str, Any]
    if not reg.amount:
        moved = {"status": "held"}
    else:
        player = await ctx.player_account(reg, config)
        try:
            result = await ctx.wallet.transfer(
                reg.hold_transfer_id,
                debit=player,
                credit=pool(row),
                amount=reg.amount,
                asset=config.asset,
                code="tournament_buy_in",
                pending=True,
                timeout_s=ctx.settings.hold_timeout_s,
                metadata={"tournament_id": str(row.id), "entry_no": reg.entry_no},
            )
        except PaymentRefused as exc:
            moved = {"status": "failed", "failure": exc.detail[:200]}
        else:
            # "posted": another caller got further meanwhile; its compare-and-set won, this one moves nothing.
            if result["status"] in ("pending", "posted"):
                moved = {"status": "held", "player_account_id": player}
            else:
                moved = {"status": "failed", "failure": f"the hold is {result['status']}"}
    status = moved.pop("status")
    await advance(session, Registration, reg.id, "holding", status, **moved)
    await session.commit()
    await session.refresh(reg)


async def take_holds(ctx: Context, session: AsyncSession, row: TournamentRow, player: uuid.UUID | None = None) -> None:
    """Confirm the holds still ``holding`` (of one player, or all), with no lock held: each its own step."""
    for reg in await queries.registrations(session, row.id, ("holding",)):
        if player is None or reg.player_id == player:
            await take_hold(ctx, session, row, reg)


async def void_hold(ctx: Context, reg: Registration) -> str:
    """Let a registration's hold go; its status in the wallet now (a freeroll has none: "voided")."""
    if not reg.amount:
        return "voided"
    result = await ctx.wallet.void(reg.hold_transfer_id)
    status: str = result["status"]
    return status


async def entry_fee(ctx: Context, row: TournamentRow, reg: Registration) -> None:
    """A posted entry's fee moves from the pool to the house. Replays are free."""
    config = TournamentConfig.from_dict(row.config)
    if config.fee and reg.amount:
        await ctx.wallet.transfer(
            transfer_id(row.id, "fee", reg.id),
            debit=pool(row),
            credit=await ctx.house_account("house_fees", config.asset),
            amount=config.fee,
            asset=config.asset,
            code="tournament_fee",
            metadata={"tournament_id": str(row.id)},
        )


async def fee_paid(
    session: AsyncSession, row: TournamentRow, reg: Registration, config: TournamentConfig, entry_id: int | None = None
) -> None:
    """``event.entry_fee_paid`` for a registration just moved to ``posted`` (its fee is the house's now); the
    entry id is known for a late entry, not yet for one posted at the start (the seat draw numbers them)."""
    await _fee_event(entry_fee_paid, session, row, reg, config.fee, entry_id)


async def fee_refunded(session: AsyncSession, row: TournamentRow, reg: Registration) -> None:
    """``event.entry_fee_refunded`` for a registration just taken back from ``posted`` (its fee was stated
    paid then; one taken back while still ``posting`` never was, and states nothing)."""
    await _fee_event(entry_fee_refunded, session, row, reg, TournamentConfig.from_dict(row.config).fee, reg.entry_id)


async def _fee_event(
    publish: Callable[..., Awaitable[None]],
    session: AsyncSession,
    row: TournamentRow,
    reg: Registration,
    fee: int,
    entry_id: int | None,
) -> None:
    if reg.amount:  # a freeroll's registration has no fee to state
        kind = "entry" if reg.entry_no == 1 else "reentry"
        await publish(session, row, purchase_id=reg.id, kind=kind, player_id=reg.player_id, entry_id=entry_id, fee=fee)


async def refund(ctx: Context, session: AsyncSession, reg: Registration) -> None:
    """refunding -> refunded (or voided): the hold is posted if it was not yet (free if it was; a hold
    that expired meanwhile moved nothing), the fee replayed (free if it happened, so the house refunds
    only what it got), then the buy-in and bounty part back from the pool and the fee from the house."""
    row = await queries.get(session, reg.tournament_id)
    config = TournamentConfig.from_dict(row.config)
    if reg.amount:
        result = await ctx.wallet.post(reg.hold_transfer_id)
        if result["status"] != "posted":
            await advance(session, Registration, reg.id, "refunding", "voided")
            await session.commit()
            return
        await entry_fee(ctx, row, reg)
        player = await ctx.player_account(reg, config)
        refunds = (
            ("refund", pool(row), config.buy_in + config.bounty),
            ("refund-fee", await ctx.house_account("house_fees", config.asset), config.fee),
        )
        for purpose, debit, amount in refunds:
            if amount:
                await ctx.wallet.transfer(
                    transfer_id(row.id, purpose, reg.id),
                    debit=debit,
                    credit=player,
                    amount=amount,
                    asset=config.asset,
                    code="tournament_refund",
                    metadata={"tournament_id": str(row.id)},
                )
    await advance(session, Registration, reg.id, "refunding", "refunded")
    await session.commit()


async def post_chunk(ctx: Context, session: AsyncSession, row: TournamentRow, regs: Sequence[Registration]) -> None:
    """A start's chunk: held -> posted | failed by compare-and-set (a cancel may have taken one to
    ``voiding`` meanwhile), the holds posted in one resolutions request, the fees of the posted ones in
    one batch (replayed by id). A freeroll's entries have no hold to post. The caller commits."""
    config = TournamentConfig.from_dict(row.config)
    held = [reg for reg in regs if reg.status == "held" and reg.amount]
    results = await ctx.wallet.post_many([reg.hold_transfer_id for reg in held]) if held else []
    for reg in regs:
        if reg.status == "held" and not reg.amount:
            await advance(session, Registration, reg.id, "held", "posted")
    for reg, result in zip(held, results, strict=True):
        if result["status"] == "posted":
            if await advance(session, Registration, reg.id, "held", "posted"):
                await fee_paid(session, row, reg, config)
        else:
            await advance(session, Registration, reg.id, "held", "failed", failure=f"the hold is {result['status']}")
    posted = set(
        (
            await session.scalars(
                select(Registration.id).where(
                    Registration.id.in_([reg.id for reg in regs]), Registration.status == "posted"
                )
            )
        ).all()
    )
    if not (config.fee and posted):
        return
    house = await ctx.house_account("house_fees", config.asset)
    await ctx.wallet.transfers(
        [
            {
                "id": transfer_id(row.id, "fee", reg.id),
                "debit": pool(row),
                "credit": house,
                "amount": config.fee,
                "asset": config.asset,
                "code": "tournament_fee",
                "metadata": {"tournament_id": str(row.id)},
            }
            for reg in regs
            if reg.id in posted and reg.amount
        ]
    )
