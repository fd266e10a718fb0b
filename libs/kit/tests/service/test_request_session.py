"""The request's database session: committed on a 2xx, rolled back on anything else, opened only when asked."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from litestar import get, post
from litestar.params import FromPath
from litestar.testing import AsyncTestClient
from sqlalchemy import text

from tablium_kit import db
from tablium_kit.app import ServiceDefinition, create_service_app
from tablium_kit.deps import DbSession
from tablium_kit.errors import Conflict
from tablium_kit.settings import ServiceSettings


async def _mark(db_session: DbSession, name: str) -> None:
    await db_session.execute(text("INSERT INTO marks (name) VALUES (:name)"), {"name": name})


@post("/marks/{name:str}")
async def add_mark(db_session: DbSession, name: FromPath[str]) -> dict[str, str]:
    await _mark(db_session, name)
    return {"name": name}


@post("/marks/{name:str}/conflict")
async def add_mark_then_conflict(db_session: DbSession, name: FromPath[str]) -> None:
    await _mark(db_session, name)
    raise Conflict("changed my mind")


@post("/marks/{name:str}/crash")
async def add_mark_then_crash(db_session: DbSession, name: FromPath[str]) -> None:
    await _mark(db_session, name)
    raise RuntimeError("boom")


@post("/marks/{name:str}/twice")
async def add_mark_twice(db_session: DbSession, name: FromPath[str]) -> dict[str, str]:
    # The unique constraint is deferred, so only the commit fails.
    await _mark(db_session, name)
    await _mark(db_session, name)
    return {"name": name}


@get("/marks")
async def list_marks(db_session: DbSession) -> list[str]:
    return list(await db_session.scalars(text("SELECT name FROM marks ORDER BY name")))


@pytest.fixture(scope="module")
async def client(make_database: Callable[[str], Awaitable[str]]) -> AsyncIterator[AsyncTestClient]:
    url = await make_database("sessions")
    engine = db.create_engine(url)
    async with engine.begin() as connection:
        await connection.execute(
            text("CREATE TABLE marks (name text, CONSTRAINT uq_marks_name UNIQUE (name) DEFERRABLE INITIALLY DEFERRED)")
        )
    await engine.dispose()
    settings = ServiceSettings.from_env(
        "sessions", {"TABLIUM_SESSIONS_DATABASE_URL": url, "TABLIUM_ENVIRONMENT": "test"}
    )
    app = create_service_app(
        ServiceDefinition(
            settings=settings,
            title="sessions",
            route_handlers=[add_mark, add_mark_then_conflict, add_mark_then_crash, add_mark_twice, list_marks],
        )
    )
    async with AsyncTestClient(app=app) as test_client:
        yield test_client


async def test_a_2xx_commits_and_errors_roll_back(client: AsyncTestClient) -> None:
    assert (await client.post("/marks/kept")).status_code == 201
    assert (await client.post("/marks/refused/conflict")).status_code == 409
    assert (await client.post("/marks/crashed/crash")).status_code == 500
    assert (await client.get("/marks")).json() == ["kept"]


async def test_a_failed_commit_is_answered_as_an_error(client: AsyncTestClient) -> None:
    response = await client.post("/marks/doubled/twice")
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "urn:tablium:problem:internal-error"
    assert response.headers["x-request-id"]
    assert "doubled" not in (await client.get("/marks")).json()


async def test_a_request_without_a_session_opens_none(client: AsyncTestClient) -> None:
    pool = client.app.state.db_engine_instance.pool
    before = pool.checkedout()
    assert (await client.get("/health")).status_code == 200
    assert pool.checkedout() == before == 0
