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


async def test_parallel_dissolutions_of_one_union_dissolve_it_once(
    http: httpx.AsyncClient, club_process: tuple[str, AsyncEngine]
) -> None:
    """The same ``DELETE /unions/{id}`` sent at once: one 204; every other copy finds it gone (404) or
    being dissolved (409), never a 5xx; each club leaves it once and ``club.union_dissolved`` is stated once."""
    founder, joiner = uuid.uuid4(), uuid.uuid4()
    home, other = await _club(http, founder), await _club(http, joiner)
    union = (await _json(http.post(f"/clubs/{home}/union", json={"name": "Race"}, headers=bearer(founder)), 201))["id"]
    await _json(http.post(f"/unions/{union}/clubs", json={"club_id": other}, headers=bearer(joiner)), 200)
    await _json(http.post(f"/unions/{union}/clubs/{other}/approve", headers=bearer(founder)))

    answers = await asyncio.gather(*(http.delete(f"/unions/{union}", headers=bearer(founder)) for _ in range(PARALLEL)))
    statuses = sorted(r.status_code for r in answers)
    assert statuses.count(204) == 1, [r.text for r in answers]
    assert set(statuses) <= {204, 404, 409}, [r.text for r in answers]
    for refused in (r for r in answers if r.status_code != 204):
        assert refused.headers["content-type"].startswith("application/problem+json")
    assert (await http.get(f"/unions/{union}", headers=bearer(founder))).status_code == 404
    engine = club_process[1]
    events = "SELECT count(*) FROM outbox WHERE subject = :u AND type = :t"
    assert await _count(engine, events, u=union, t="club.union_dissolved") == 1
    assert await _count(engine, events, u=union, t="club.union_left") == 2, "each club left it once"
    dissolved = "SELECT count(*) FROM audit_log WHERE action = 'union.dissolve' AND target = :u"
    assert await _count(engine, dissolved, u=union) == 2, "one audit entry per club"
