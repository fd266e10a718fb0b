"""Starting a tournament: a saga (docs/adr/0006-tournament-engine.md, "Starts cut short").

Holds not yet confirmed are taken (no lock); ``starting`` is committed under the row lock; the entries
are posted a chunk at a time, each chunk committed; then, under the row lock and only if the tournament is
still ``starting``, the engine is built and snapshotted in one commit. A retry of ``start`` or the
reconciler's ``start`` step finishes one cut short (every step replays by its transfer id). A start that
cannot complete (fewer than two entries posted) becomes the cancel saga.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import NoReturn

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from tablium_event.db import journal, queries
from tablium_event.db.models import Registration, TournamentRow
from tablium_event.domain.config import TournamentConfig, TournamentRuleError
from tablium_event.domain.engine import Tournament
from tablium_event.domain.instructions import Instruction
from tablium_event.services import cancel, engines, entries, prizes
from tablium_event.services.cache import Live
from tablium_event.services.context import Context, rule_error
from tablium_kit.errors import Conflict

log = structlog.get_logger("tablium.event")


async def start(ctx: Context, session: AsyncSession, tournament_id: uuid.UUID) -> TournamentRow:
    await entries.take_holds(ctx, session, await queries.get(session, tournament_id))
    row = await queries.locked(session, tournament_id)
    if row.status not in ("registering", "starting"):
        raise Conflict("the tournament is not open for a start")
    ready = await queries.registrations(session, row.id, ("held", "posted"))
    if len(ready) < 2:
        if row.status == "starting":  # holds expired or failed since the start was begun
            return await _abandon(ctx, session, row)
        raise Conflict("at least two registrations are needed to start")
    row.status = "starting"
    await session.commit()  # from here on a retry (or the reconciler) finishes the start
    return await _finish(ctx, session, row, ready)


async def _finish(ctx: Context, session: AsyncSession, row: TournamentRow, ready: list[Registration]) -> TournamentRow:
    """Post the entries (a chunk at a time, each chunk committed), then build the engine, once.

    Every step replays by its transfer id, so a start cut short anywhere is finished by calling this
    again (a retry of ``start``, or the reconciler); the engine is built only by the call that finds
    the tournament still ``starting`` under the row lock.
    """
    size = min(max(1, ctx.settings.wallet_batch_size), 200)  # the wallet's 64 KiB body limit
    for first in range(0, len(ready), size):
        await entries.post_chunk(ctx, session, row, ready[first : first + size])
        await session.commit()
    row = await queries.locked(session, row.id)
    if row.status != "starting":
        return row  # another call finished (or cancelled) it meanwhile
    posted = await queries.registrations(session, row.id, ("posted",))
    if len(posted) < 2:
        return await _abandon(ctx, session, row)
    config = TournamentConfig.from_dict(row.config)
    engine = Tournament(config)
    out: list[Instruction] = []
    try:
        for reg in posted:  # in registration order (created_at, id): entry ids replay identically
            reg.entry_id, registered = engine.register(str(reg.player_id))
            out += registered  # a sit-and-go starts itself when its last seat is taken
        if engine.status == "registering":
            out += engine.start()
    except TournamentRuleError as exc:
        raise rule_error(exc) from exc
    row.started_at = datetime.now(UTC)
    row.status = "running"
    row.version += 1
    await journal.snapshot(session, row, engine, keep=ctx.settings.keep_snapshots)
    await engines.effects(session, row, engine, out)
    # Read before the commit: a failed commit expires the row, and the check-in below must not read it.
    tournament_id, version = row.id, row.version
    await ctx.engines.checkout(tournament_id)  # none yet: taken only so that nobody reads half of it
    kept: Live | None = None
    try:
        await session.commit()
        kept = Live(version, engine)
    finally:
        ctx.engines.checkin(tournament_id, kept)
    # A satellite whose pool buys a seat for everyone is over at once: its prizes are owed now.
    await prizes.pay(ctx, session, row.id)
    return row


async def _abandon(ctx: Context, session: AsyncSession, row: TournamentRow) -> NoReturn:
    """A start that cannot complete (fewer than two entries could be posted: holds expired or
    failed) is cancelled, not left ``starting``: posted entries refunded, holds voided, and
    ``event.tournament_cancelled`` published once (``cancel.finish`` under the row lock)."""
    log.warning("start abandoned: fewer than two entries could be posted", tournament=str(row.id))
    row.status = "cancelling"
    await session.commit()  # from here on a retry (or the reconciler) finishes the cancel
    await cancel.finish(ctx, session, row)
    await session.commit()  # the cancel is done: the answer below is an error, which rolls back
    raise Conflict("fewer than two entries could be posted: the tournament was cancelled, every entry refunded")
