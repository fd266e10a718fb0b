"""Snapshot every running tournament: the step before a deploy that changes the engine's rules.

Run by the engine that wrote the journal (``tablium-event snapshot``); each snapshot committed on its own
(docs/adr/0006-tournament-engine.md, "Rules version").
"""

from __future__ import annotations

import uuid

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tablium_event.db import journal, queries
from tablium_event.db.models import TournamentRow
from tablium_event.domain.engine import RULES_VERSION
from tablium_event.services import engines
from tablium_event.services.context import Context

log = structlog.get_logger("tablium.event")


async def snapshot_running(ctx: Context, session: AsyncSession) -> list[tuple[uuid.UUID, int]]:
    """Snapshot every running tournament whose journal has facts after its snapshot (the step before
    a deploy that changes the engine's rules: run by the engine that wrote the journal). Returns
    (tournament, version) of each snapshot taken; each is committed on its own."""
    taken: list[tuple[uuid.UUID, int]] = []
    ids = (await session.scalars(select(TournamentRow.id).where(TournamentRow.status == "running"))).all()
    for tournament_id in ids:
        row = await queries.locked(session, tournament_id)
        if row.status != "running" or row.state_version >= row.version:
            await session.commit()
            continue
        version = row.version
        live = await ctx.engines.checkout(tournament_id)
        try:
            live = await engines.up_to_date(session, tournament_id, version, live)
            await journal.snapshot(session, row, live.engine, keep=ctx.settings.keep_snapshots)
            await session.commit()
        except BaseException:
            ctx.engines.checkin(tournament_id, None)  # not row.id: a failed commit expired the row
            raise
        ctx.engines.checkin(tournament_id, live)  # same version, same state: still current
        taken.append((tournament_id, version))
        log.info("snapshot taken", tournament=str(tournament_id), version=version, rules_version=RULES_VERSION)
    return taken
