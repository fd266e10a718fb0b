"""Concurrent identical requests over real HTTP against a running club process: one effect each.

The in-process test client serialises too much to show races (STYLE.md), so the service runs as
production runs it (``tablium-club serve``) and many clients hit it at once.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import httpx
import pytest
from club_support import KID, SIGNING_KEY, bearer
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from tablium_kit.messaging.testing import AmqpNames
from tablium_kit.service_processes import serve_jwks, start_service

PARALLEL = 20


@pytest.fixture(scope="module")
def jwks_url() -> Iterator[str]:
    with serve_jwks(KID, SIGNING_KEY.public_key()) as url:
        yield url


@pytest.fixture(scope="module")
async def club_process(
    make_database: Callable[[str], Awaitable[str]], amqp_names: AmqpNames, jwks_url: str
) -> AsyncIterator[tuple[str, AsyncEngine]]:
    database_url = await make_database("club_races")
    env = {
        "TABLIUM_CLUB_DATABASE_URL": database_url,
        "TABLIUM_EVENTS_EXCHANGE": amqp_names.exchange,
        "TABLIUM_ENVIRONMENT": "test",
        # The shared broker's club queue is the running platform's; tests hand events to the handlers.
        "TABLIUM_CLUB_CONSUME_EVENTS": "false",
        "TABLIUM_JWKS_URL": jwks_url,
        "TABLIUM_LOG_LEVEL": "WARNING",
    }
    club = start_service("club", env)
    engine = create_async_engine(database_url)
    yield club.url, engine
    await engine.dispose()
    club.stop()


@pytest.fixture
async def http(club_process: tuple[str, AsyncEngine]) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=club_process[0] + "/api/v1", timeout=30) as client:
        yield client


async def _json(response: Awaitable[httpx.Response], status: int = 200) -> Any:
    answered = await response
    assert answered.status_code == status, answered.text
    return answered.json()


async def _count(engine: AsyncEngine, sql: str, **params: Any) -> int:
    async with engine.connect() as connection:
        return int((await connection.execute(text(sql), params)).scalar_one())


async def _club(http: httpx.AsyncClient, owner: uuid.UUID, **settings: Any) -> str:
    club = await _json(http.post("/clubs", json={"name": "Race", **settings}, headers=bearer(owner)), 201)
    return str(club["id"])


async def test_parallel_approvals_of_one_request_admit_once(
    http: httpx.AsyncClient, club_process: tuple[str, AsyncEngine]
) -> None:
    owner, player = uuid.uuid4(), uuid.uuid4()
    club = await _club(http, owner, privacy="public")
    asks = await asyncio.gather(
        *(http.post(f"/clubs/{club}/requests", json={}, headers=bearer(player)) for _ in range(PARALLEL))
    )
    assert {r.status_code for r in asks} == {201}
    assert len({r.json()["id"] for r in asks}) == 1
    request = asks[0].json()["id"]
    approvals = await asyncio.gather(
        *(http.post(f"/clubs/{club}/requests/{request}/approve", headers=bearer(owner)) for _ in range(PARALLEL))
    )
    assert {r.status_code for r in approvals} == {200}, [r.text for r in approvals]
    engine = club_process[1]
    joined = "SELECT count(*) FROM outbox WHERE type = 'club.member_joined' AND envelope->'data'->>'player_id' = :p"
    assert await _count(engine, joined, p=str(player)) == 1
    assert await _count(engine, "SELECT count(*) FROM members WHERE player_id = :p", p=player) == 1
    assert await _count(engine, "SELECT count(*) FROM audit_log WHERE action = 'request.approve'") == 1


async def test_parallel_joins_with_a_code_admit_each_player_once_and_no_more_than_its_uses(
    http: httpx.AsyncClient, club_process: tuple[str, AsyncEngine]
) -> None:
    owner, player = uuid.uuid4(), uuid.uuid4()
    club = await _club(http, owner)
    code = (await _json(http.post(f"/clubs/{club}/invites", json={"max_uses": 5}, headers=bearer(owner)), 201))["code"]
    same = await asyncio.gather(
        *(http.post("/clubs/join", json={"code": code}, headers=bearer(player)) for _ in range(PARALLEL))
    )
    assert {r.status_code for r in same} == {200}
    others = [uuid.uuid4() for _ in range(PARALLEL)]
    answers = await asyncio.gather(*(http.post("/clubs/join", json={"code": code}, headers=bearer(p)) for p in others))
    assert sorted(r.status_code for r in answers) == [200] * 4 + [409] * (PARALLEL - 4)
    engine = club_process[1]
    assert await _count(engine, "SELECT uses FROM invite_codes WHERE code = :c", c=code) == 5
    assert await _count(engine, "SELECT count(*) FROM members WHERE club_id = :c", c=uuid.UUID(club)) == 6
    seqs = "SELECT count(DISTINCT (envelope->'data'->>'seq')) - count(*) FROM outbox WHERE subject = :c"
    assert await _count(engine, seqs, c=club) == 0  # every event of the club has its own seq
