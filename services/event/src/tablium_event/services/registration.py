"""Registering and unregistering: sagas (docs/adr/0006-tournament-engine.md, "Sagas").

register: the row ``holding`` committed (a hold never exists without it); the hold taken and recorded
(``entries.take_hold``, committed); before the start it rests ``held`` (finished after a crash by the
reconciler's ``hold`` step); while running, the late-entry saga (``late_entry.drive``). The registration
that fills a sit-and-go starts it (the start saga).
unregister: ``held -> voiding`` under the row lock, committed; the void; ``voided`` (reconciler: ``late_entry``).
"""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tablium_event.clients.wallet import PaymentRefused, transfer_id
from tablium_event.db import queries
from tablium_event.db.models import Registration
from tablium_event.db.steps import advance
from tablium_event.domain.config import TournamentConfig
from tablium_event.domain.engine import Tournament
from tablium_event.services import clubs, engines, entries, late_entry, start
from tablium_event.services.context import Context
from tablium_kit.errors import Conflict, NotFound


async def register(ctx: Context, session: AsyncSession, tournament_id: uuid.UUID, player_id: uuid.UUID) -> Registration:
    row = await queries.locked(session, tournament_id)
    await clubs.check_may_enter(session, row, player_id)
    config = TournamentConfig.from_dict(row.config)
    engine = await engines.engine_of(ctx, session, row)
    if row.status == "running":
        if engine is None or not engine.registration_open:
            raise Conflict("registration is closed")
    elif row.status != "registering":
        raise Conflict("registration is not open")
    mine = (
        await session.scalars(
            select(Registration).where(Registration.tournament_id == row.id, Registration.player_id == player_id)
        )
    ).all()
    if any(r.status in ("holding", "held", "posting") for r in mine) or (
        any(r.status == "posted" for r in mine)
        and (engine is None or not engine.by_player.get(str(player_id)) or has_live_entry(engine, player_id))
    ):
        raise Conflict("already registered")
    if row.status == "registering" and config.format == "sng":
        held = await queries.registrations(session, row.id, ("holding", "held"))
        if len(held) >= config.seats_per_table:
            raise Conflict("the sit-and-go is full")
    entry_no = len(mine) + 1
    amount = config.buy_in + config.fee + config.bounty
    reg = Registration(
        tournament_id=row.id,
        player_id=player_id,
        entry_no=entry_no,
        # A freeroll takes no hold (the wallet refuses a zero amount): nothing to wait for.
        status="holding" if amount else "held",
        amount=amount,
        hold_transfer_id=transfer_id(row.id, "hold", player_id, entry_no),
    )
    session.add(reg)
    await session.commit()  # the row first: a hold can never exist without it
    if reg.status == "holding":
        await entries.take_hold(ctx, session, row, reg)
    if reg.status == "failed":
        raise PaymentRefused(reg.failure or "the wallet refused the hold")
    if row.status == "running":
        reg = await late_entry.drive(ctx, session, reg.id)
        if reg.status in ("voided", "refunded", "failed"):
            raise Conflict(reg.failure or "the late registration was refused")
        return reg
    row = await queries.locked(session, tournament_id)
    if config.format == "sng":
        held = await queries.registrations(session, row.id, ("held",))
        if len(held) == config.seats_per_table:
            await session.commit()
            await start.start(ctx, session, row.id)
    return reg


async def unregister(
    ctx: Context, session: AsyncSession, tournament_id: uuid.UUID, player_id: uuid.UUID
) -> Registration:
    """held -> voiding (under the row lock, so a start cannot take it meanwhile) -> voided (the hold
    voided after the commit: no wallet call under the lock). A registration still ``holding`` has its
    hold confirmed first."""
    await entries.take_holds(ctx, session, await queries.get(session, tournament_id), player_id)
    row = await queries.locked(session, tournament_id)
    if row.status != "registering":
        raise Conflict("unregistering is possible only before the start")
    regs = [r for r in await queries.registrations(session, row.id, ("held", "voiding")) if r.player_id == player_id]
    if not regs:
        raise NotFound("no registration to cancel")
    reg = regs[0]
    await advance(session, Registration, reg.id, "held", "voiding", failure="unregistered")
    await session.commit()
    reg = await late_entry.drive(ctx, session, reg.id)
    if reg.status != "voided":
        raise Conflict(f"the hold is {reg.status}")
    return reg


def has_live_entry(engine: Tournament, player_id: uuid.UUID) -> bool:
    return any(not engine.entries[e].busted for e in engine.by_player.get(str(player_id), []))
