"""The club membership projection the lobby and the event service keep (``tablium_kit.club_projection``): the
club service's events in any order and any number of times give one answer, and the service's hook hears
who may have lost the right to play. Real Postgres."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import DeclarativeBase

from tablium_kit.club_projection import ClubProjection, Leavers, club_projection_tables
from tablium_kit.db import create_engine, service_metadata, session_factory
from tablium_kit.messaging import CloudEvent
from tablium_kit.messaging.catalog import CATALOG


class Base(DeclarativeBase):
    metadata = service_metadata()


PROJECTION = ClubProjection(club_projection_tables(Base.metadata))
Sessions = async_sessionmaker[AsyncSession]


@pytest.fixture(scope="module")
async def sessions(make_database: Callable[[str], Awaitable[str]]) -> AsyncIterator[Sessions]:
    engine = create_engine(await make_database("club_projection"))
    async with engine.begin() as connection:
        await connection.run_sync(Base.metadata.create_all)
    yield session_factory(engine)
    await engine.dispose()


class Heard:
    """The service's hook: what it was told, in order."""

    def __init__(self) -> None:
        self.leavers: list[Leavers] = []

    async def __call__(self, session: AsyncSession, leavers: Leavers) -> None:
        self.leavers.append(leavers)


async def deliver(sessions: Sessions, heard: Heard, type_: str, **data: Any) -> None:
    event = CloudEvent(
        id=uuid.uuid4(), source="/services/club", type=type_, time=datetime.now(UTC), subject="x", data=data
    )
    async with sessions() as session, session.begin():
        await PROJECTION.handlers(heard)[type_](session, event)


async def member(sessions: Sessions, player: uuid.UUID, *, club: uuid.UUID, union: uuid.UUID | None = None) -> bool:
    async with sessions() as session:
        return await PROJECTION.is_member(session, player, club_id=club, union_id=union)


def test_the_handlers_follow_every_club_event_the_catalog_sends_the_lobby_and_the_event_service() -> None:
    handled = set(PROJECTION.handlers(Heard()))
    for service in ("lobby", "event"):
        assert handled == {t for t, spec in CATALOG.items() if t.startswith("club.") and service in spec.consumers}


async def test_membership_follows_the_newest_seq_whatever_the_order(sessions: Sessions) -> None:
    heard, club, player = Heard(), uuid.uuid4(), uuid.uuid4()
    ids = {"club_id": str(club), "player_id": str(player)}
    await deliver(sessions, heard, "club.member_left", **ids, reason="kicked", seq=3)  # the leave first
    await deliver(sessions, heard, "club.member_joined", **ids, role="member", agent_id=None, seq=1)
    await deliver(sessions, heard, "club.member_updated", **ids, role="manager", agent_id=None, seq=2)
    assert not await member(sessions, player, club=club), "the older join and update arrived late: still gone"
    assert heard.leavers == [Leavers(player_ids=(player,))]
    await deliver(sessions, heard, "club.member_joined", **ids, role="member", agent_id=None, seq=4)
    await deliver(sessions, heard, "club.member_joined", **ids, role="member", agent_id=None, seq=4)  # twice
    assert await member(sessions, player, club=club)
    async with sessions() as session:
        assert await PROJECTION.role_in(session, club, player) == "member"
        assert await PROJECTION.role_in(session, uuid.uuid4(), player) is None


async def test_a_union_admits_the_members_of_its_clubs_and_a_closed_club_none(sessions: Sessions) -> None:
    heard, union, home, other = Heard(), uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    player, stranger = uuid.uuid4(), uuid.uuid4()
    await deliver(
        sessions, heard, "club.member_joined", club_id=str(other), player_id=str(player), role="member", seq=1
    )
    assert not await member(sessions, player, club=home, union=union), "the club is in no union yet"
    await deliver(sessions, heard, "club.union_joined", union_id=str(union), club_id=str(other), seq=1)
    await deliver(sessions, heard, "club.union_joined", union_id=str(union), club_id=str(home), seq=2)
    assert await member(sessions, player, club=home, union=union), "a member of another club of the union"
    assert not await member(sessions, player, club=home), "but not of the club itself"
    assert not await member(sessions, stranger, club=home, union=union)
    async with sessions() as session:
        assert await PROJECTION.union_of(session, home) == union

    await deliver(sessions, heard, "club.union_left", union_id=str(union), club_id=str(other), seq=3)
    assert not await member(sessions, player, club=home, union=union)
    assert heard.leavers[-1] == Leavers(union_id=union)
    await deliver(sessions, heard, "club.union_joined", union_id=str(union), club_id=str(other), seq=1)  # late
    assert not await member(sessions, player, club=home, union=union), "an older join changes nothing"

    await deliver(sessions, heard, "club.closed", club_id=str(other), seq=2)
    assert not await member(sessions, player, club=other)
    assert heard.leavers[-1] == Leavers(player_ids=(player,), club_id=other)


async def test_a_join_older_than_the_clubs_close_arriving_after_it_admits_nobody(sessions: Sessions) -> None:
    heard, club, early, late = Heard(), uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await deliver(sessions, heard, "club.member_joined", club_id=str(club), player_id=str(early), role="member", seq=1)
    await deliver(sessions, heard, "club.closed", club_id=str(club), seq=5)
    await deliver(sessions, heard, "club.closed", club_id=str(club), seq=5)  # twice
    # Joined (seq 3) and promoted (seq 4) before the close, delivered after it.
    await deliver(sessions, heard, "club.member_joined", club_id=str(club), player_id=str(late), role="member", seq=3)
    await deliver(
        sessions, heard, "club.member_updated", club_id=str(club), player_id=str(early), role="manager", seq=4
    )
    assert not await member(sessions, late, club=club)
    assert not await member(sessions, early, club=club)
    assert heard.leavers[0] == Leavers(player_ids=(early,), club_id=club)
