"""The tournament clock in the background: a running tournament whose clock has something due gets a tick.

Each tick that changes something (a level, a break) is one fact, committed once under the row lock
(``engines.fact``); an idle tick is none (docs/adr/0006-tournament-engine.md, "Idle clock ticks").
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tablium_event.db.journal import RulesVersionMismatch
from tablium_event.db.models import TournamentRow
from tablium_event.domain.facts import apply
from tablium_event.services import engines
from tablium_event.services.context import Context


async def tick_due(ctx: Context, session: AsyncSession) -> None:
    """Tick the running tournaments whose clock has something due. Only a tick that changes something
    is a fact (a level, a break): an idle one would only add the time elapsed, which the next fact's
    own tick adds anyway, so skipping it (leaving the cached engine untouched) keeps the replay exact
    without a journal row per tournament per second."""
    running = (
        await session.execute(
            select(TournamentRow.id, TournamentRow.version, TournamentRow.started_at).where(
                TournamentRow.status == "running"
            )
        )
    ).all()
    await session.commit()
    for tournament_id, version, started_at in running:
        cached = ctx.engines.peek(tournament_id)
        if cached is not None and cached.version == version and not engines.clock_due(cached.engine, started_at):
            continue  # the engine this process holds is current and nothing is due: no lock, no query
        row = await session.scalar(
            select(TournamentRow).where(TournamentRow.id == tournament_id).with_for_update(skip_locked=True)
        )
        if row is None or row.status != "running":
            await session.commit()
            continue
        try:
            engine = await engines.engine_of(ctx, session, row)
            if engine is None or not engines.clock_due(engine, row.started_at):
                await session.commit()
                continue
            async with engines.fact(ctx, session, row) as engine:
                payload = {"now_ms": engines.now_ms(row, engine)}
                out = apply(engine, "tick", payload)
                await engines.record(ctx, session, row, engine, "tick", payload, out)
        except RulesVersionMismatch:
            await session.rollback()  # logged where it was found; the other tournaments' clocks go on
