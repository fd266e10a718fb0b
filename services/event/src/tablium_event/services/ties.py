"""The director's ordering of a tie (TOURNAMENT.md, "What directors ask for"): one fact, then the prizes step.

The tie's shared prizes are replaced by each place's own: the engine gives the places and amounts (their
sum is the tie's, so the pool is unchanged), and in the fact's one transaction the tie's ``owed`` prizes are
voided and the new ones made owed (their transfer ids carry the fact's version, so they never collide with
the voided ones); then ``prizes.pay`` pays them, as after a hand. Money moves once: a prize already paid, or
being paid, is final (the platform never claws a prize back), so a tie with one is refused (409). With
``tie_review_s`` a tie's prizes are ``held`` that long after its hand, waiting for this ruling.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tablium_event.db import queries
from tablium_event.db.models import Prize, TournamentRow
from tablium_event.domain.config import TournamentRuleError
from tablium_event.domain.facts import apply
from tablium_event.services import engines, prizes
from tablium_event.services.context import Context, rule_error
from tablium_kit.errors import Conflict


async def order_tie(ctx: Context, session: AsyncSession, tournament_id: uuid.UUID, order: list[int]) -> TournamentRow:
    row = await queries.locked(session, tournament_id)
    if row.started_at is None:
        raise Conflict("the tournament has not started: no tie to order")
    async with engines.fact(ctx, session, row) as engine:
        payload = {"now_ms": engines.now_ms(row, engine), "entries": order}
        try:
            out = apply(engine, "order_tie", payload)
        except TournamentRuleError as exc:
            raise rule_error(exc) from exc
        shared = (
            await session.scalars(
                select(Prize.transfer_id).where(
                    Prize.tournament_id == row.id,
                    Prize.kind == "place",
                    Prize.entry_id.in_(order),
                    Prize.status != "voided",
                )
            )
        ).all()
        if shared:
            # Compare-and-set: a prize the prizes step has started to pay (``paying``) is not voided.
            voided = await session.execute(
                update(Prize)
                .where(Prize.transfer_id.in_(shared), Prize.status.in_(("held", "owed")))
                .values(status="voided")
                .execution_options(synchronize_session=False)
            )
            if voided.rowcount != len(shared):  # type: ignore[attr-defined]
                raise Conflict("the tie's prizes are paid: its places are final")
        await engines.record(ctx, session, row, engine, "order_tie", payload, out)
    await prizes.pay(ctx, session, row.id)
    return row
