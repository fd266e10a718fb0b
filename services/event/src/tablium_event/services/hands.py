"""A hand finished at a tournament table: one fact, answered with the table's instructions and next hand.

The report, its fact, its answer (kept for a repeated ``hand_id``), prizes owed and the outbox events commit
once, under the row lock; prizes it made owed are then paid (the prizes saga step, ``prizes.pay``).
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tablium_event.db import queries
from tablium_event.db.models import HandReport
from tablium_event.domain.config import TournamentRuleError
from tablium_event.domain.facts import apply, hand_payload
from tablium_event.services import engines, prizes
from tablium_event.services.context import Context, rule_error
from tablium_kit.errors import Conflict


async def hand_finished(
    ctx: Context,
    session: AsyncSession,
    tournament_id: uuid.UUID,
    *,
    hand_id: str,
    table: int,
    stacks: dict[int, int],
    knockouts: dict[int, list[int]],
) -> dict[str, Any]:
    row = await queries.locked(session, tournament_id)
    # Under the row lock: a copy of this report that got the lock first has committed its answer by now.
    done = await session.scalar(
        select(HandReport)
        .where(HandReport.tournament_id == tournament_id, HandReport.hand_id == hand_id)
        .execution_options(populate_existing=True)
    )
    if done is not None:
        return done.response
    if row.status != "running":
        raise Conflict("the tournament is not running")
    async with engines.fact(ctx, session, row) as engine:
        payload = hand_payload(engines.now_ms(row, engine), table, stacks, knockouts)
        try:
            out = apply(engine, "hand", payload)
        except TournamentRuleError as exc:
            raise rule_error(exc) from exc
        response = {
            "instructions": [i.to_dict() for i in out],
            "next_hand": engine.table_view(table) if table in engine.tables else None,
            "clock": engine.clock(),
        }
        session.add(HandReport(tournament_id=row.id, hand_id=hand_id, response=response))
        await engines.record(ctx, session, row, engine, "hand", payload, out)
    await prizes.pay(ctx, session, row.id)
    return response
