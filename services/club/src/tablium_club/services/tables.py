"""The club's lobby tables, as the lobby announced them (events/handlers.py keeps the list)."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tablium_club.db.models import ClubTable
from tablium_club.domain.permissions import Action
from tablium_club.services.access import acting


async def open_tables(session: AsyncSession, club_id: uuid.UUID, actor: uuid.UUID) -> list[ClubTable]:
    await acting(session, club_id, actor, Action.VIEW_CLUB, lock=False)
    found = await session.execute(
        select(ClubTable)
        .where(ClubTable.club_id == club_id, ClubTable.closed_at.is_(None))
        .order_by(ClubTable.opened_at)
        .limit(500)
    )
    return list(found.scalars())
