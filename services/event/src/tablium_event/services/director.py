"""The director's set-up and commands: create, edit, open registration; pause, resume, undo, seat locks, tolerance.

Each commits once: create and edit in the request's transaction, a command as its fact (``engines.fact``).
Opening registration opens the pool account in the wallet first, with nothing locked or open (opening it
again is free), then moves the status under the row lock in the one commit that writes.
"""

from __future__ import annotations

import itertools
import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from tablium_event.db import queries
from tablium_event.db.models import TournamentRow
from tablium_event.domain.config import TournamentConfig, TournamentRuleError
from tablium_event.domain.facts import COMMANDS, apply
from tablium_event.events import REGISTRATION_OPENED, TOURNAMENT_CREATED, publish
from tablium_event.services import clubs, engines
from tablium_event.services.context import Context, rule_error
from tablium_kit.auth import Principal
from tablium_kit.errors import Conflict, InvalidInput

EDITABLE = ("draft", "registering")


def check_config(config: TournamentConfig) -> None:
    """The engine's rules, and the service's: rebuys and add-ons are sold at ``config.price`` (the
    buy-in into the pool, plus a rebuy's bounty part and fee), so they need a buy-in, and a rebuy needs
    a level to be bought in."""
    try:
        config.check()
    except TournamentRuleError as exc:
        raise InvalidInput(str(exc)) from exc
    if (config.rebuy_chips or config.addon_chips) and config.buy_in <= 0:
        raise InvalidInput("rebuys and add-ons cost the buy-in: they need a positive buy-in")
    if config.rebuy_chips and config.rebuy_until_level < 1:
        raise InvalidInput("rebuys need a last rebuy level (rebuy_until_level >= 1)")
    if config.rebuy_until_level and not config.rebuy_chips:
        raise InvalidInput("a rebuy period needs rebuy chips")
    if config.addon_chips and config.addon_level() is None:
        raise InvalidInput("add-ons are sold at the first break after the rebuy period: the structure has none")
    shares = config.payout.fixed_bp
    if shares and any(later > earlier for earlier, later in itertools.pairwise(shares)):
        # Checked here, not in the engine's check(): a stored configuration must still load.
        raise InvalidInput("fixed payout shares must not grow from one place to the next")


async def create(
    ctx: Context,
    session: AsyncSession,
    *,
    name: str,
    config: TournamentConfig,
    director: Principal,
    club_id: uuid.UUID | None = None,
    union_wide: bool = False,
) -> TournamentRow:
    """A draft; with ``club_id`` a club tournament (its owner or a manager creates it: ``clubs.club_scope``)."""
    union_id = await clubs.club_scope(session, director, club_id, union_wide=union_wide)
    check_config(config)
    row = TournamentRow(
        name=name,
        config=config.to_dict(),
        created_by=director.subject,
        status="draft",
        version=1,
        club_id=club_id,
        union_id=union_id,
    )
    session.add(row)
    await session.flush()
    scope = {"club_id": str(club_id), "union_id": str(union_id) if union_id else None} if club_id else {}
    await publish(session, row.id, row.version, TOURNAMENT_CREATED, {"name": name, "config": row.config, **scope})
    await session.commit()
    return row


async def edit(
    ctx: Context, session: AsyncSession, tournament_id: uuid.UUID, *, name: str | None, config: TournamentConfig | None
) -> TournamentRow:
    row = await queries.locked(session, tournament_id)
    if row.status not in EDITABLE:
        raise Conflict("a tournament can be edited only before it starts")
    if config is not None:
        registered = await queries.registrations(session, row.id, queries.LIVE) if row.status == "registering" else []
        if config.format == "sng" and len(registered) > config.seats_per_table:
            # The engine refuses a sit-and-go entry beyond its seats: the start would post every hold, then fail.
            raise Conflict(f"{len(registered)} players are registered: more than the sit-and-go's seats")
        if registered:
            current = TournamentConfig.from_dict(row.config)
            if (config.buy_in, config.fee, config.bounty, config.asset) != (
                current.buy_in,
                current.fee,
                current.bounty,
                current.asset,
            ):
                raise Conflict("the price cannot change once players have registered")
        check_config(config)
        row.config = config.to_dict()
    if name is not None:
        row.name = name
    row.version += 1
    await session.commit()
    return row


async def open_registration(ctx: Context, session: AsyncSession, tournament_id: uuid.UUID) -> TournamentRow:
    """The pool account is opened before the row is locked (no wallet call under a lock; opening it
    again is free: the wallet keys it by owner, kind and asset), then the status moves under the lock."""
    row = await queries.get(session, tournament_id)
    if row.status != "draft":
        raise Conflict("registration opens once, from draft")
    asset = TournamentConfig.from_dict(row.config).asset
    await session.commit()  # a read: nothing open while the wallet is called
    account = await ctx.wallet.open_account(f"tournament:{tournament_id}", "prize_pool", asset)
    row = await queries.locked(session, tournament_id)
    if row.status != "draft" or TournamentConfig.from_dict(row.config).asset != asset:
        raise Conflict("the tournament changed meanwhile: try again")
    row.prize_pool_account_id = account
    row.status = "registering"
    row.version += 1
    await publish(session, row.id, row.version, REGISTRATION_OPENED, {"name": row.name, "config": row.config})
    await session.commit()
    return row


async def command(
    ctx: Context, session: AsyncSession, tournament_id: uuid.UUID, action: str, **kwargs: Any
) -> TournamentRow:
    """pause, resume, undo, lock, tolerance: the engine decides; the result is saved and published."""
    if action not in COMMANDS:
        raise InvalidInput(f"unknown command {action}")
    row = await queries.locked(session, tournament_id)
    async with engines.fact(ctx, session, row) as engine:
        # What the clock did since the last fact is published with the command's own instructions.
        payload = {"now_ms": engines.now_ms(row, engine), **kwargs}
        try:
            out = apply(engine, action, payload)
        except TournamentRuleError as exc:
            raise rule_error(exc) from exc
        await engines.record(ctx, session, row, engine, action, payload, out)
    return row
