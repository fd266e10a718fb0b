"""Prizes: what a fact made owed is paid from the pool, the guarantee's overlay first; the pool invariant.

A saga step (docs/adr/0006-tournament-engine.md, "Sagas"): the ``owed`` rows are written in the fact's
transaction (``engines.effects``); after that commit the overlay is topped up and each prize is paid by
its transfer id and marked ``paid``, each committed on its own. A crash or a lost answer leaves ``owed``;
the reconciler's ``prizes`` step pays again by the same ids.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from prometheus_client import Counter
from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tablium_event.clients.wallet import transfer_id
from tablium_event.db import queries
from tablium_event.db.models import Prize, Purchase, Registration, TournamentRow
from tablium_event.domain.config import TournamentConfig
from tablium_event.services import engines
from tablium_event.services.context import Context, pool

log = structlog.get_logger("tablium.event")

OWED = ("owed", "paying")  # a prize not yet known to be paid: the prizes step pays it (again) by its id

POOL_MISMATCHES = Counter(
    "tablium_event_pool_mismatches",
    "Tournaments whose prize pool in the wallet differs from what the engine's facts say it holds",
)


async def pay(ctx: Context, session: AsyncSession, tournament_id: uuid.UUID) -> None:
    """Pay what is owed from the pool, the guarantee's overlay first brought to what is owed now (``_top_up``)."""
    owed = (
        await session.scalars(
            select(Prize).where(Prize.tournament_id == tournament_id, Prize.status.in_(OWED)).order_by(Prize.place)
        )
    ).all()
    if not owed:
        return
    row = await session.get(TournamentRow, tournament_id)
    assert row is not None
    config = TournamentConfig.from_dict(row.config)
    if config.guarantee:
        posted = len(await queries.registrations(session, row.id, ("posted",)))
        # Only prize-pool parts count towards the guarantee: bounty parts are paid as bounties, fees are
        # the house's.
        bought = sum(config.price(p.kind).prize_pool for p in await queries.purchases(session, row.id, ("posted",)))
        await session.commit()  # nothing locked or open while the wallet is called
        await _top_up(ctx, row, config, max(0, config.guarantee - posted * config.buy_in - bought))
    for prize in owed:
        # owed -> paying before the wallet is called (compare-and-set): a director's ordering of a tie voids
        # only ``owed`` prizes, so a prize on its way to the wallet is never replaced (``ties.py``).
        if not await _move(session, prize.transfer_id, ("owed", "paying"), "paying"):
            continue
        await session.commit()
        if prize.amount:  # else nothing to move (the wallet refuses a zero transfer)
            player = await ctx.wallet.open_account(f"player:{prize.player_id}", "player", config.asset)
            await ctx.wallet.transfer(
                prize.transfer_id,
                debit=pool(row),
                credit=player,
                amount=prize.amount,
                asset=config.asset,
                code="tournament_prize",
                metadata={"tournament_id": str(row.id), "place": prize.place, "kind": prize.kind},
            )
        await _move(session, prize.transfer_id, ("paying",), "paid")
        await session.commit()


async def release_reviewed(ctx: Context, session: AsyncSession) -> int:
    """Tied prizes held past ``tie_review_s`` with no ruling become owed (the caller commits; the prizes step
    pays them). Returns how many."""
    due = datetime.now(UTC) - timedelta(seconds=ctx.settings.tie_review_s)
    released = await session.execute(
        update(Prize)
        .where(Prize.status == "held", Prize.created_at <= due)
        .values(status="owed")
        .execution_options(synchronize_session=False)
    )
    return int(released.rowcount)  # type: ignore[attr-defined]


async def _move(session: AsyncSession, prize_id: uuid.UUID, before: tuple[str, ...], after: str) -> bool:
    moved = await session.execute(
        update(Prize)
        .where(Prize.transfer_id == prize_id, Prize.status.in_(before))
        .values(status=after)
        .execution_options(synchronize_session=False)
    )
    return bool(moved.rowcount)  # type: ignore[attr-defined]


async def _top_up(ctx: Context, row: TournamentRow, config: TournamentConfig, owed: int) -> None:
    """Make the house's overlay in the pool ``owed`` (the guarantee less the prize-pool parts collected).

    One transfer per change of the amount owed: step k has the id ``transfer_id(t, "overlay", k)``,
    house -> pool when the overlay grows, pool -> house when it shrinks (a rebuy or a late entry after
    a top-up: the surplus goes back, never stranded in the pool). The wallet is the record: the steps
    already made are read back by id (a tournament topped up before this rule has one transfer with
    the id ``transfer_id(t, "overlay")``), so a retry after a crash continues with the next step, and
    two callers at once converge (the loser's step is refused as a different body, and its retry
    reads it back).
    """
    pool_account = pool(row)
    house = await ctx.house_account("house_adjustments", config.asset)
    given, step = await overlay_given(ctx, row)
    change = owed - given
    if change:
        await ctx.wallet.transfer(
            transfer_id(row.id, "overlay", step),
            debit=house if change > 0 else pool_account,
            credit=pool_account if change > 0 else house,
            amount=abs(change),
            asset=config.asset,
            code="tournament_overlay" if change > 0 else "tournament_overlay_return",
            metadata={"tournament_id": str(row.id), "step": step},
        )


async def overlay_given(ctx: Context, row: TournamentRow) -> tuple[int, int]:
    """The overlay the house has put into the pool so far, read back from the wallet by the top-ups'
    step ids; and the next step's number."""
    pool_account = pool(row)

    def into_pool(transfer: dict[str, Any]) -> int:
        amount = int(transfer["amount"])
        return amount if uuid.UUID(str(transfer["credit_account_id"])) == pool_account else -amount

    legacy = await ctx.wallet.get_transfer(transfer_id(row.id, "overlay"))
    given = into_pool(legacy) if legacy is not None else 0
    step = 1
    while (made := await ctx.wallet.get_transfer(transfer_id(row.id, "overlay", step))) is not None:
        given += into_pool(made)
        step += 1
    return given, step


async def check_pool(ctx: Context, session: AsyncSession, tournament_id: uuid.UUID) -> bool | None:
    """The tournament-level invariant: the pool in the wallet = the pool by the engine's facts (less
    the overlay the house has not yet been asked for). None when money is on its way (a purchase or
    late entry under way, a prize owed) and the two may differ for a moment; else whether they agree.
    A mismatch is logged as an error and counted (``tablium_event_pool_mismatches_total``)."""
    row = await queries.get(session, tournament_id)
    engine = await engines.engine_of(ctx, session, row)
    under_way = await session.scalar(
        select(func.count())
        .select_from(Purchase)
        .where(Purchase.tournament_id == tournament_id, Purchase.status.in_(queries.PURCHASE_UNDER_WAY))
    )
    under_way = (under_way or 0) + (
        await session.scalar(
            select(func.count())
            .select_from(Registration)
            .where(
                Registration.tournament_id == tournament_id,
                or_(
                    Registration.status.in_(("posting", "voiding", "refunding")),
                    and_(Registration.status == "held", Registration.entry_id.is_(None)),
                ),
            )
        )
        or 0
    )
    owed = await session.scalar(
        select(func.count())
        .select_from(Prize)
        .where(Prize.tournament_id == tournament_id, Prize.status.in_((*OWED, "held")))
    )
    await session.commit()
    if engine is None or under_way or owed:
        return None
    given, _ = await overlay_given(ctx, row)
    expected = engine.pool_held - (engine.prize_pool - engine.pool_collected) + given
    held = await ctx.wallet.balance(pool(row))
    if held == expected:
        return True
    POOL_MISMATCHES.inc()
    log.error("prize pool mismatch", tournament=str(tournament_id), wallet=held, engine=expected)
    return False
