"""The queries every use case shares: a tournament (locked or not), its registrations and purchases in order.

Statuses move by compare-and-set (``db/steps.py``); the lists here say which statuses mean what.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, TypeVar

from sqlalchemy import ARRAY, Select, String, any_, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from tablium_event.db.models import Purchase, Registration, TournamentRow
from tablium_kit.db import Reader, Record
from tablium_kit.errors import NotFound

Paid = TypeVar("Paid", Registration, Purchase)

LIVE = ("holding", "held", "posting", "posted")
# A registration's money still to move (``late_entry.drive``), or posted: what a cancel gives back.
REGISTRATION_LIVE = (*LIVE, "voiding", "refunding")
# A purchase not yet done (``purchases.drive``), or posted: what a cancel gives back.
PURCHASE_UNDER_WAY = ("holding", "held", "posting", "voiding", "refunding")
PURCHASE_LIVE = (*PURCHASE_UNDER_WAY, "posted")


async def get(session: AsyncSession, tournament_id: uuid.UUID) -> TournamentRow:
    row = await session.get(TournamentRow, tournament_id)
    if row is None:
        raise NotFound("no such tournament")
    return row


def _tournament_with_entries() -> Select[Any]:
    """A tournament without its engine state, and its live entries counted, in one statement."""
    tournaments = TournamentRow.__table__
    registrations = Registration.__table__
    live = bindparam("live", list(LIVE), type_=ARRAY(String))
    entries = (
        select(func.count())
        .where(registrations.c.tournament_id == tournaments.c.id, registrations.c.status == any_(live))
        .scalar_subquery()
    )
    columns = [column for column in tournaments.c if column.key != "state"]
    return select(*columns, entries.label("live_entries")).where(tournaments.c.id == bindparam("tournament_id"))


TOURNAMENT_WITH_ENTRIES = _tournament_with_entries()


async def read(reader: Reader, tournament_id: uuid.UUID) -> Record:
    """A tournament for a read-only answer (``live_entries`` counted): one statement, no transaction."""
    row = await reader.one_or_none(TOURNAMENT_WITH_ENTRIES, tournament_id=tournament_id)
    if row is None:
        raise NotFound("no such tournament")
    return row


async def locked(session: AsyncSession, tournament_id: uuid.UUID) -> TournamentRow:
    """The tournament's row under its lock (``FOR UPDATE``), read fresh: one fact at a time per tournament."""
    row = await session.scalar(
        select(TournamentRow)
        .where(TournamentRow.id == tournament_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if row is None:
        raise NotFound("no such tournament")
    return row


async def in_order(
    session: AsyncSession,
    model: type[Paid],
    tournament_id: uuid.UUID,
    statuses: Sequence[str],
    *,
    offset: int = 0,
    limit: int | None = None,
) -> list[Paid]:
    """A tournament's registrations or purchases in these statuses, oldest first (the order entries replay in)."""
    rows = await session.scalars(
        select(model)
        .where(model.tournament_id == tournament_id, model.status.in_(statuses))
        .order_by(model.created_at, model.id)
        .offset(offset)
        .limit(limit)
        # Statuses move by compare-and-set (``db.steps.advance``), not through these objects: read them fresh.
        .execution_options(populate_existing=True)
    )
    return list(rows.all())


async def registrations(session: AsyncSession, tournament_id: uuid.UUID, statuses: Sequence[str]) -> list[Registration]:
    return await in_order(session, Registration, tournament_id, statuses)


async def purchases(session: AsyncSession, tournament_id: uuid.UUID, statuses: Sequence[str]) -> list[Purchase]:
    return await in_order(session, Purchase, tournament_id, statuses)


async def newest(session: AsyncSession, limit: int, *, club_id: uuid.UUID | None = None) -> Sequence[TournamentRow]:
    """Newest first; a club's own (``club_id``) or every tournament."""
    query = select(TournamentRow).order_by(TournamentRow.id.desc()).limit(limit)
    if club_id is not None:
        query = query.where(TournamentRow.club_id == club_id)
    return (await session.scalars(query)).all()
