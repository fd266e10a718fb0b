"""What the club service does with the lobby's events: it keeps a list of each club's tables.

Each handler runs in the kit consumer's transaction with its inbox row (a redelivery is skipped); the
table's own id is the key, so the same fact in another envelope changes nothing either.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from tablium_club.db.models import ClubTable
from tablium_kit.messaging import CloudEvent
from tablium_kit.messaging.consumer import Handler


async def on_table_opened(session: AsyncSession, event: CloudEvent) -> None:
    data = event.data
    if not data.get("club_id"):
        return  # a public or tournament table
    await session.execute(
        insert(ClubTable)
        .values(
            table_id=uuid.UUID(data["table_id"]),
            club_id=uuid.UUID(data["club_id"]),
            union_id=uuid.UUID(data["union_id"]) if data.get("union_id") else None,
            name=str(data["name"]),
            asset=str(data["asset"]),
            small_blind=str(data["small_blind"]),
            big_blind=str(data["big_blind"]),
            seats=int(data["seats"]),
            opened_at=event.time,
        )
        .on_conflict_do_nothing()
    )


async def on_table_closed(session: AsyncSession, event: CloudEvent) -> None:
    closed_at: datetime = event.time
    await session.execute(
        update(ClubTable)
        .where(ClubTable.table_id == uuid.UUID(event.data["table_id"]), ClubTable.closed_at.is_(None))
        .values(closed_at=closed_at)
    )


HANDLERS: dict[str, Handler] = {"lobby.table_opened": on_table_opened, "lobby.table_closed": on_table_closed}
