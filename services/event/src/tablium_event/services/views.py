"""What the lobby and the director read: a tournament's summary, its entry list, the live engine's views.

Reads only: nothing here writes or commits (the request's session is committed empty by the kit).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from tablium_event.db import queries
from tablium_event.db.models import Registration, TournamentRow
from tablium_event.domain.engine import Tournament
from tablium_event.services import engines
from tablium_event.services.context import Context


@dataclass(frozen=True)
class TournamentView:
    """A tournament as the lobby shows it: its row, and the engine's counts once it has started."""

    id: uuid.UUID
    name: str
    status: str
    version: int
    config: dict[str, Any]
    entries: int
    prize_pool: int
    payouts: list[int]
    clock: dict[str, Any] | None
    tables: int
    players_left: int | None
    created_at: datetime
    started_at: datetime | None
    club_id: uuid.UUID | None = None
    union_id: uuid.UUID | None = None


async def tournament(ctx: Context, session: AsyncSession, row: TournamentRow) -> TournamentView:
    engine = await engines.engine_of(ctx, session, row)
    return TournamentView(
        id=row.id,
        name=row.name,
        status=row.status,
        version=row.version,
        config=row.config,
        entries=len(engine.entries) if engine else len(await queries.registrations(session, row.id, queries.LIVE)),
        prize_pool=engine.prize_pool if engine else 0,
        payouts=list(engine.payouts) if engine else [],
        clock=engines.clock_of(row, engine) if engine else None,
        tables=len(engine.tables) if engine else 0,
        players_left=engine.remaining if engine else None,
        created_at=row.created_at,
        started_at=row.started_at,
        club_id=row.club_id,
        union_id=row.union_id,
    )


async def registered(
    session: AsyncSession, tournament_id: uuid.UUID, *, offset: int, limit: int
) -> Sequence[Registration]:
    """The live registrations (registered or entered), in registration order: the lobby's entry list."""
    await queries.get(session, tournament_id)
    return await queries.in_order(session, Registration, tournament_id, queries.LIVE, offset=offset, limit=limit)


async def engine(ctx: Context, session: AsyncSession, tournament_id: uuid.UUID) -> Tournament | None:
    """The live engine of a tournament (None before the start), for a read: use it at once."""
    return await engines.engine_of(ctx, session, await queries.get(session, tournament_id))
