"""The live engine of a tournament: read it, or give it one fact under the row lock and record it.

``fact`` checks the engine out (others in this process wait), brings it to the row's version and, if the
body recorded the fact (``record``: the journal row, a snapshot now and then, prizes owed and the outbox
events, all in the row's transaction), commits and only then checks it in. That commit is the one commit
of a fact: whoever calls ``fact`` owns no other write in that transaction.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from tablium_event.clients.wallet import transfer_id
from tablium_event.db import journal
from tablium_event.db.models import Prize, TournamentRow
from tablium_event.domain.engine import Tournament
from tablium_event.domain.instructions import AwardPrize, EliminatePlayer, Instruction
from tablium_event.events import publish_instructions
from tablium_event.services.cache import Live
from tablium_event.services.context import Context


async def up_to_date(session: AsyncSession, tournament_id: uuid.UUID, version: int, live: Live | None) -> Live:
    """The engine at ``version`` (or newer): ``live`` as it is, or brought forward by the facts
    journaled since (another process wrote them), else the snapshot with the facts after it."""
    if live is not None and live.version >= version:
        return live
    if live is not None and await journal.replay_onto(session, tournament_id, live.engine, live.version, version):
        live.version = version
        return live
    return Live(*await journal.load(session, tournament_id, version))


async def engine_of(ctx: Context, session: AsyncSession, row: TournamentRow) -> Tournament | None:
    """The engine as of ``row.version`` (or newer), None before the start. Read it at once: it is the
    live engine, which the next fact changes."""
    if row.started_at is None:
        return None
    live = await ctx.engines.checkout(row.id)
    try:
        live = await up_to_date(session, row.id, row.version, live)
    except BaseException:
        ctx.engines.checkin(row.id, None)
        raise
    ctx.engines.checkin(row.id, live)
    return live.engine


async def engine_now(ctx: Context, session: AsyncSession, row: TournamentRow) -> Tournament:
    """The engine to ask a question: the live one, which the question does not change; only when a level
    or break is due that no fact has applied yet, a throwaway engine (loaded, never the live one) ticked to now."""
    engine = await engine_of(ctx, session, row)
    assert engine is not None
    if clock_due(engine, row.started_at):
        engine = (await up_to_date(session, row.id, row.version, None)).engine
        engine.tick(now_ms(row, engine))
    return engine


@contextlib.asynccontextmanager
async def fact(ctx: Context, session: AsyncSession, row: TournamentRow) -> AsyncIterator[Tournament]:
    """The live engine of ``row`` (locked) for one fact, up to date with the row's version.

    If the body recorded the fact (``record``), the transaction is committed here and only then is
    the engine kept for the next fact; if it recorded nothing, raised, or the commit failed, the
    engine (possibly half-changed) is dropped.
    """
    # The id is read once, before anything can fail: after a failed commit the ORM row is expired, and
    # reading it in the ``finally`` would raise and leave the engine checked out for good.
    tournament_id = row.id
    live = await ctx.engines.checkout(tournament_id)
    kept: Live | None = None
    try:
        live = await up_to_date(session, tournament_id, row.version, live)
        before = row.version
        yield live.engine
        if row.version != before:
            version = row.version
            await session.commit()
            kept = Live(version, live.engine)
    finally:
        ctx.engines.checkin(tournament_id, kept)


async def record(
    ctx: Context,
    session: AsyncSession,
    row: TournamentRow,
    engine: Tournament,
    kind: str,
    payload: dict[str, Any],
    out: list[Instruction],
) -> None:
    """The fact applied to ``engine``: one journal row, a snapshot now and then, and its effects,
    all in the row's transaction (``fact`` commits it)."""
    journal.append(session, row, kind, payload)
    if engine.status != "running" or row.version - row.state_version >= ctx.settings.snapshot_every:
        await journal.snapshot(session, row, engine, keep=ctx.settings.keep_snapshots)
    await effects(session, row, engine, out, kind, hold_ties=ctx.settings.tie_review_s > 0)


async def effects(
    session: AsyncSession,
    row: TournamentRow,
    engine: Tournament,
    out: list[Instruction],
    kind: str = "",
    *,
    hold_ties: bool = False,
) -> None:
    """Prizes owed and events out, for the instructions of the fact (of ``kind``) that made ``row.version``.
    A place's prize is paid once per place and entry; a tie ordered by the director replaces the tie's
    prizes (voided, ``ties.py``) with new ones, whose ids carry the fact's version. With ``hold_ties`` a
    tie's prizes are ``held`` for the director's review (the reconciler makes them owed after it)."""
    if engine.status == "finished":
        row.status = "finished"
    tied = {i.entry for i in out if isinstance(i, EliminatePlayer) and i.place_to > i.place} if hold_ties else set()
    bounty_index = 0
    for instruction in out:
        if isinstance(instruction, AwardPrize):
            if instruction.prize == "place":
                place = (instruction.place, instruction.entry)
                ordered = ("ordered", row.version) if kind == "order_tie" else ()
                prize_id = transfer_id(row.id, "prize", *place, *ordered)
            else:
                prize_id = transfer_id(row.id, "bounty", row.version, bounty_index)
                bounty_index += 1
            session.add(
                Prize(
                    transfer_id=prize_id,
                    tournament_id=row.id,
                    player_id=uuid.UUID(instruction.player),
                    entry_id=instruction.entry,
                    place=instruction.place,
                    kind=instruction.prize,
                    amount=instruction.amount,
                    status="held" if instruction.prize == "place" and instruction.entry in tied else "owed",
                )
            )
    await publish_instructions(session, row.id, row.version, out, asset=row.config["asset"])


def clock_of(row: TournamentRow, engine: Tournament) -> dict[str, Any]:
    """The lobby's clock, now: idle ticks are not journaled, so the engine's time may lag the wall clock."""
    return engine.clock(now_ms(row, engine))


def now_ms(row: TournamentRow, engine: Tournament) -> int:
    """Milliseconds since the start; never before the engine's own clock (another process, a clock step)."""
    return now_ms_since(row.started_at, engine)


def now_ms_since(started_at: datetime | None, engine: Tournament) -> int:
    started = started_at or datetime.now(UTC)
    return max(engine.now_ms, int((time.time() - started.timestamp()) * 1000))


def clock_due(engine: Tournament, started_at: datetime | None) -> bool:
    due = engine.next_clock_event_ms()
    return due is not None and now_ms_since(started_at, engine) >= due
