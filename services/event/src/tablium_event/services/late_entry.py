"""A registration of a running (or cancelled) tournament, driven to where it rests: the late-entry saga.

A late entry: held -engine says yes-> posting -post, fee, apply "entry"-> posted (with its entry id)
              held -engine says no-> voiding -void-> voided
              posting -engine refuses now-> refunding -refund-> refunded
A cancel or an unregister: held -> voiding, posting/posted -> refunding. A ``held`` registration of a
tournament not yet running rests (the start posts it).

Each arrow is a compare-and-set committed on its own (a saga step); the engine's steps run under the row
lock and no wallet call does. Finished after a crash by the reconciler's ``late_entry`` step (``drive``).
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tablium_event.db import queries
from tablium_event.db.models import Registration
from tablium_event.db.steps import advance
from tablium_event.domain.config import TournamentConfig, TournamentRuleError
from tablium_event.domain.facts import apply
from tablium_event.services import engines, entries
from tablium_event.services.context import Context
from tablium_kit.errors import Conflict


async def drive(ctx: Context, session: AsyncSession, reg_id: uuid.UUID) -> Registration:
    """Move a registration forward until it rests; returns it."""
    while True:
        reg = await session.get(Registration, reg_id, populate_existing=True)
        assert reg is not None
        await session.commit()
        match reg.status:
            case "held" if reg.entry_id is None:
                if not await _decide(ctx, session, reg):
                    return reg
            case "posting":
                await _post(ctx, session, reg)
            case "voiding":
                if await entries.void_hold(ctx, reg) not in ("voided", "expired"):
                    raise Conflict(f"the hold of registration {reg.id} is not voided")
                await advance(session, Registration, reg.id, "voiding", "voided")
                await session.commit()
            case "refunding":
                await entries.refund(ctx, session, reg)
            case _:
                return reg


async def _decide(ctx: Context, session: AsyncSession, reg: Registration) -> bool:
    """held -> posting | voiding under the row lock: the lock was let go while the wallet held the
    money, so the engine is asked again before the post. False if the registration rests (not running)."""
    row = await queries.locked(session, reg.tournament_id)
    if row.status in ("registering", "starting"):
        await session.commit()
        return False
    refusal: str | None = "the tournament is not running"
    if row.status == "running":
        refusal = (await engines.engine_now(ctx, session, row)).registration_refusal(str(reg.player_id))
    if refusal is None:
        await advance(session, Registration, reg.id, "held", "posting")
    else:
        await advance(session, Registration, reg.id, "held", "voiding", failure=refusal[:200])
    await session.commit()
    return True


async def _post(ctx: Context, session: AsyncSession, reg: Registration) -> None:
    """posting -> posted | refunding | failed: the hold posted and the fee moved (no lock), then under
    the row lock the engine seats the entry in the transaction that records it ``posted``."""
    row = await queries.get(session, reg.tournament_id)
    if reg.amount:
        result = await ctx.wallet.post(reg.hold_transfer_id)
        if result["status"] != "posted":
            failure = f"the hold is {result['status']}"
            await advance(session, Registration, reg.id, "posting", "failed", failure=failure)
            await session.commit()
            return
        await entries.entry_fee(ctx, row, reg)
    await session.commit()
    row = await queries.locked(session, reg.tournament_id)
    if await session.scalar(select(Registration.status).where(Registration.id == reg.id)) != "posting":
        await session.commit()  # another caller seated it (or gave it back) meanwhile
        return
    if row.status != "running":
        failure = "the tournament is not running"
        await advance(session, Registration, reg.id, "posting", "refunding", failure=failure)
        await session.commit()
        return
    async with engines.fact(ctx, session, row) as engine:
        payload: dict[str, Any] = {"now_ms": engines.now_ms(row, engine), "player": str(reg.player_id)}
        try:
            out = apply(engine, "entry", payload)
        except TournamentRuleError as exc:
            await advance(session, Registration, reg.id, "posting", "refunding", failure=str(exc)[:200])
            await session.commit()  # the engine that refused is not kept (nothing recorded)
            return
        entry_id = engine.by_player[str(reg.player_id)][-1]
        if await advance(session, Registration, reg.id, "posting", "posted", entry_id=entry_id):
            await entries.fee_paid(session, row, reg, TournamentConfig.from_dict(row.config), entry_id=entry_id)
        await engines.record(ctx, session, row, engine, "entry", payload, out)
