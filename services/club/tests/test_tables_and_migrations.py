"""The club's list of lobby tables (from the lobby's events, applied by the club's handlers as its consumer
runs them), and the migrations matching the models."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from club_support import Clubs
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from tablium_club.db.models import Base
from tablium_club.events.handlers import HANDLERS
from tablium_club.settings import ClubSettings

from tablium_kit.messaging import CloudEvent


async def deliver(sessions: async_sessionmaker[AsyncSession], type_: str, data: dict[str, Any]) -> None:
    event = CloudEvent(
        id=uuid.uuid4(),
        source="/services/lobby",
        type=type_,
        time=datetime.now(UTC),
        subject=data["table_id"],
        data=data,
    )
    async with sessions() as session, session.begin():
        await HANDLERS[type_](session, event)


def opened(table_id: str, club_id: str | None) -> dict[str, Any]:
    return {
        "table_id": table_id, "tournament_id": None, "name": "Club game", "asset": "USDT", "small_blind": "1",
        "big_blind": "2", "ante": "0", "seats": 6, "private": False, "club_id": club_id, "union_id": None,
    }  # fmt: skip


async def test_the_club_lists_its_open_tables_once_whatever_the_repeats(
    clubs: Clubs, sessions: async_sessionmaker[AsyncSession]
) -> None:
    owner = uuid.uuid4()
    club = await clubs.create(owner)
    mine, public = str(uuid.uuid4()), str(uuid.uuid4())
    for _ in range(2):
        await deliver(sessions, "lobby.table_opened", opened(mine, club))
    await deliver(sessions, "lobby.table_opened", opened(public, None))
    listed = await clubs.call("GET", f"/clubs/{club}/tables", owner)
    assert [(t["table_id"], t["big_blind"]) for t in listed] == [(mine, "2")]
    await clubs.call("GET", f"/clubs/{club}/tables", uuid.uuid4(), 403)
    await deliver(sessions, "lobby.table_closed", {"table_id": mine})
    assert await clubs.call("GET", f"/clubs/{club}/tables", owner) == []


def _differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


async def test_the_migrations_build_exactly_the_models(clubs: Clubs, settings: ClubSettings) -> None:
    engine = create_async_engine(settings.database_url)  # migrated by the app's start-up
    try:
        async with engine.connect() as connection:
            assert await connection.run_sync(_differences) == []
    finally:
        await engine.dispose()
