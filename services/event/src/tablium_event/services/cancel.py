"""Cancelling a tournament: a saga. Every entry gets back all it paid (docs/adr/0006-tournament-engine.md).

``cancelling`` committed under the row lock; each registration and purchase driven to ``voided`` or
``refunded`` (each step committed on its own; a posted one's fee stated given back,
``event.entry_fee_refunded``, in the step that takes it back); then, under the row lock and only if still
``cancelling``, the cancel fact and ``event.tournament_cancelled`` in one commit. The reconciler's
``cancel`` step finishes one cut short (``finish``).
"""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from tablium_event.db import queries
from tablium_event.db.models import Purchase, Registration, TournamentRow
from tablium_event.db.steps import advance
from tablium_event.domain.facts import apply
from tablium_event.events import TOURNAMENT_CANCELLED, publish
from tablium_event.services import engines, entries, late_entry, purchases
from tablium_event.services.context import Context
from tablium_kit.errors import Conflict


async def cancel(ctx: Context, session: AsyncSession, tournament_id: uuid.UUID) -> TournamentRow:
    row = await queries.locked(session, tournament_id)
    if row.status in ("finished", "cancelled"):
        raise Conflict("the tournament is over")
    engine = await engines.engine_of(ctx, session, row)
    if engine is not None and (engine.prizes_paid or engine.bounties_paid):
        raise Conflict("prizes were already paid: the tournament cannot be cancelled")
    row.status = "cancelling"
    await session.commit()
    await finish(ctx, session, row)
    return row


async def finish(ctx: Context, session: AsyncSession, row: TournamentRow) -> None:
    for reg in await queries.registrations(session, row.id, queries.REGISTRATION_LIVE):
        await _give_back(ctx, session, row, reg)
    for purchase in await queries.purchases(session, row.id, queries.PURCHASE_LIVE):
        await _give_back_purchase(ctx, session, purchase)
    row = await queries.locked(session, row.id)
    if row.status != "cancelling":
        return
    if row.started_at is not None:
        async with engines.fact(ctx, session, row) as engine:
            payload = {"now_ms": engines.now_ms(row, engine)}
            out = apply(engine, "cancel", payload)
            row.status = "cancelled"
            await engines.record(ctx, session, row, engine, "cancel", payload, out)
            await publish(session, row.id, row.version, TOURNAMENT_CANCELLED, {})
        return
    row.status = "cancelled"
    row.version += 1
    await publish(session, row.id, row.version, TOURNAMENT_CANCELLED, {})
    await session.commit()


async def _give_back(ctx: Context, session: AsyncSession, row: TournamentRow, reg: Registration) -> None:
    """A registration of a cancelled tournament: a hold is voided, an entry (posted, or being posted)
    refunded from where each part went; each a compare-and-set, then driven to its end."""
    if reg.status == "holding":
        await entries.take_hold(ctx, session, row, reg)
    reason = "the tournament was cancelled"
    await advance(session, Registration, reg.id, "held", "voiding", failure=reason)
    # Only a posted entry's fee was stated paid: its refund is stated in the move that decides it.
    if await advance(session, Registration, reg.id, "posted", "refunding", failure=reason):
        await entries.fee_refunded(session, row, reg)
    await advance(session, Registration, reg.id, "posting", "refunding", failure=reason)
    await session.commit()
    await late_entry.drive(ctx, session, reg.id)


async def _give_back_purchase(ctx: Context, session: AsyncSession, purchase: Purchase) -> None:
    """A purchase of a cancelled tournament: a posted one goes back (refunding); one still under way is
    driven to its end, which the tournament no longer running makes a void or a refund."""
    if await advance(session, Purchase, purchase.id, "posted", "refunding", failure="the tournament was cancelled"):
        await purchases.fee_refunded(session, purchase)
        await session.commit()
    await purchases.drive(ctx, session, purchase.id)
