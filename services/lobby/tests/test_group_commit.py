"""Group commit (services/commits.py) against real Postgres: units that arrive together share one
transaction; a unit returns only once it is committed; a harmless refusal leaves the group alone; a failing
unit fails its whole group and nothing of that group is committed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from tablium_lobby.services.commits import GroupCommit

from tablium_kit import db


class Refused(Exception):
    pass


@pytest.fixture
async def sessions(make_database: Callable[[str], Awaitable[str]]) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = db.create_engine(await make_database("group_commit"))
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE units (n int PRIMARY KEY, txid bigint NOT NULL)"))
    yield db.session_factory(engine)
    await engine.dispose()


async def insert(group: GroupCommit, n: int, fail: type[Exception] | None = None) -> int:
    async with group.transaction() as session:
        await session.execute(text("INSERT INTO units VALUES (:n, txid_current())"), {"n": n})
        if fail is not None:
            raise fail(f"unit {n}")
    return n


async def committed(sessions: async_sessionmaker[AsyncSession]) -> dict[int, int]:
    async with sessions() as session:
        return dict((await session.execute(text("SELECT n, txid FROM units"))).all())


async def test_units_arriving_together_share_one_transaction(sessions: async_sessionmaker[AsyncSession]) -> None:
    group = GroupCommit(sessions, (Refused,))
    assert await asyncio.gather(*(insert(group, n) for n in range(10))) == list(range(10))
    rows = await committed(sessions)
    assert sorted(rows) == list(range(10))  # every unit returned after its row was committed
    assert len(set(rows.values())) == 1


async def test_a_refused_unit_leaves_the_others_of_its_group_committed(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    group = GroupCommit(sessions, (Refused,))

    async def refused() -> None:
        async with group.transaction() as session:
            await session.execute(text("SELECT 1"))
            raise Refused("not your turn")

    results = await asyncio.gather(insert(group, 1), refused(), insert(group, 2), return_exceptions=True)
    assert results[0] == 1
    assert isinstance(results[1], Refused)
    assert results[2] == 2
    assert sorted(await committed(sessions)) == [1, 2]


async def test_a_failing_unit_fails_its_whole_group_and_nothing_of_it_is_committed(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    group = GroupCommit(sessions, (Refused,))
    results = await asyncio.gather(
        insert(group, 1), insert(group, 2, fail=ValueError), insert(group, 3), insert(group, 4), return_exceptions=True
    )
    # Unit 1 shared the spoiled group: it fails too (its caller drops its cache; nothing was announced).
    assert isinstance(results[0], RuntimeError)
    assert isinstance(results[1], ValueError)
    # The units after the failure started a group of their own.
    assert results[2:] == [3, 4]
    assert sorted(await committed(sessions)) == [3, 4]


async def test_off_each_unit_is_its_own_transaction(sessions: async_sessionmaker[AsyncSession]) -> None:
    group = GroupCommit(sessions, (Refused,), enabled=False)
    await asyncio.gather(*(insert(group, n) for n in range(3)))
    assert len(set((await committed(sessions)).values())) == 3
