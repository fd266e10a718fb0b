"""The request's database session: committed on a 2xx, rolled back on anything else, opened only when asked."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from litestar import get, post
from litestar.params import FromPath
from litestar.testing import AsyncTestClient
from sqlalchemy import Column, Integer, MetaData, Table, Text, bindparam, event, select, text
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, SessionTransaction, mapped_column

from tablium_kit import db
from tablium_kit.app import ServiceDefinition, create_service_app
from tablium_kit.deps import DbReader, DbSession
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


@post("/marks/{name:str}/flush")
async def add_mark_and_flush(db_session: DbSession, name: FromPath[str]) -> None:
    # Checked now, in the handler: SQLAlchemy's IntegrityError, not advanced-alchemy's.
    await db_session.execute(text("SET CONSTRAINTS ALL IMMEDIATE"))
    await _mark(db_session, name)


@get("/marks")
async def list_marks(db_session: DbSession) -> list[str]:
    return list(await db_session.scalars(text("SELECT name FROM marks ORDER BY name")))


class _Base(DeclarativeBase):
    pass


class Note(_Base):
    __tablename__ = "notes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    body: Mapped[str] = mapped_column(Text)


@post("/notes/{text_:str}")
async def add_note(db_session: DbSession, text_: FromPath[str]) -> None:
    # Added, never flushed by the handler: only the kit's commit writes it.
    db_session.add(Note(body=text_))


@get("/notes")
async def list_notes(db_session: DbSession) -> list[str]:
    return list(await db_session.scalars(select(Note.body).order_by(Note.id)))


@get("/unused-session")
async def unused_session(db_session: DbSession, db_reader: DbReader) -> dict[str, int]:
    # Asks for a session (as handlers do that need one on some paths) but answers from the reader.
    return {"marks": len(await db_reader.all(ALL_MARKS))}


marks = Table("marks", MetaData(), Column("name", Text))
ALL_MARKS = select(marks.c.name).order_by(marks.c.name)
MARK_BY_NAME = select(marks.c.name).where(marks.c.name == bindparam("name"))


@get("/marks/read")
async def read_marks(db_reader: DbReader) -> list[str]:
    return [row.name for row in await db_reader.all(ALL_MARKS)]


@get("/marks/{name:str}")
async def read_mark(db_reader: DbReader, name: FromPath[str]) -> dict[str, str | None]:
    found = await db_reader.one_or_none(MARK_BY_NAME, name=name)
    return {"found": None if found is None else found.name}


@get("/marks/{name:str}/written-in")
async def read_mark_written_in(db_reader: DbReader, name: FromPath[str]) -> dict[str, bool]:
    # A value written into the statement (no bindparam), built per call: bound all the same.
    return {"found": await db_reader.one_or_none(select(marks.c.name).where(marks.c.name == name)) is not None}


@pytest.fixture(scope="module")
async def client(make_database: Callable[[str], Awaitable[str]]) -> AsyncIterator[AsyncTestClient]:
    url = await make_database("sessions")
    engine = db.create_engine(url)
    async with engine.begin() as connection:
        await connection.execute(text("CREATE TABLE notes (id serial PRIMARY KEY, body text NOT NULL)"))
        await connection.execute(
            text("CREATE TABLE marks (name text, CONSTRAINT uq_marks_name UNIQUE (name) DEFERRABLE INITIALLY DEFERRED)")
        )
        # A commit that fails for another reason than integrity: a deferred trigger raising.
        await connection.execute(
            text(
                "CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS"
                " $$ BEGIN IF NEW.name = 'poison' THEN RAISE EXCEPTION 'poisoned'; END IF;"
                " IF NEW.name = 'contended' THEN RAISE EXCEPTION 'lost' USING ERRCODE = 'serialization_failure';"
                " END IF; RETURN NULL; END $$"
            )
        )
        await connection.execute(
            text(
                "CREATE CONSTRAINT TRIGGER refuse_poison AFTER INSERT ON marks DEFERRABLE INITIALLY DEFERRED"
                " FOR EACH ROW EXECUTE FUNCTION refuse_poison()"
            )
        )
    await engine.dispose()
    settings = ServiceSettings.from_env(
        "sessions", {"TABLIUM_SESSIONS_DATABASE_URL": url, "TABLIUM_ENVIRONMENT": "test"}
    )
    app = create_service_app(
        ServiceDefinition(
            settings=settings,
            title="sessions",
            route_handlers=[
                add_mark,
                add_mark_then_conflict,
                add_mark_then_crash,
                add_mark_twice,
                add_mark_and_flush,
                list_marks,
                read_marks,
                read_mark,
                read_mark_written_in,
                add_note,
                list_notes,
                unused_session,
            ],
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
    response = await client.post("/marks/poison")
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "urn:tablium:problem:internal-error"
    assert response.headers["x-request-id"]
    assert "poison" not in (await client.get("/marks")).json()


async def test_a_transient_failure_at_commit_is_a_503_to_retry(client: AsyncTestClient) -> None:
    """A commit lost to a serialization failure (or a database gone between handler and commit) is not
    the client's fault nor a bug: 503 with Retry-After, nothing committed, as errors.py answers it."""
    response = await client.post("/marks/contended")
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"] == "1"
    assert response.json()["status"] == 503
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "contended" not in (await client.get("/marks")).json()


async def test_an_integrity_error_at_commit_is_a_conflict(client: AsyncTestClient) -> None:
    response = await client.post("/marks/doubled/twice")
    assert response.status_code == 409, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json() == {
        "type": "urn:tablium:problem:conflict",
        "title": "Conflict",
        "status": 409,
        "detail": "the change conflicts with existing data",
    }
    assert response.headers["x-request-id"]
    assert "doubled" not in (await client.get("/marks")).json()


async def test_an_integrity_error_in_the_handler_is_a_conflict(client: AsyncTestClient) -> None:
    assert (await client.post("/marks/flushed")).status_code == 201
    response = await client.post("/marks/flushed/flush")
    assert response.status_code == 409, response.text
    assert response.json()["type"] == "urn:tablium:problem:conflict"


async def test_a_request_without_a_session_opens_none(client: AsyncTestClient) -> None:
    pool = client.app.state.db_engine_instance.pool
    before = pool.checkedout()
    assert (await client.get("/health")).status_code == 200
    assert pool.checkedout() == before == 0


async def test_the_reader_sees_committed_rows_and_leaves_sessions_transactional(client: AsyncTestClient) -> None:
    assert (await client.post("/marks/read-me")).status_code == 201
    assert "read-me" in (await client.get("/marks/read")).json()
    assert (await client.get("/marks/read-me")).json() == {"found": "read-me"}
    assert (await client.get("/marks/nobody")).json() == {"found": None}
    for _ in range(2):  # compiled once, then from the reader's cache
        assert (await client.get("/marks/read-me/written-in")).json() == {"found": True}
        assert (await client.get("/marks/nobody/written-in")).json() == {"found": False}
    pool = client.app.state.db_engine_instance.pool
    assert pool.checkedout() == 0
    # Requests run one at a time here, so the next session gets the connection the reader
    # just used: had it stayed in autocommit, the crashed request's insert would be kept.
    assert (await client.post("/marks/after-reader/crash")).status_code == 500
    assert "after-reader" not in (await client.get("/marks")).json()


async def test_an_added_object_is_committed_without_a_flush_in_the_handler(client: AsyncTestClient) -> None:
    assert (await client.post("/notes/unflushed")).status_code == 201
    assert (await client.get("/notes")).json() == ["unflushed"]


async def test_a_session_asked_for_but_unused_begins_no_transaction(client: AsyncTestClient) -> None:
    begun: list[SessionTransaction] = []

    def count(session: Session, transaction: SessionTransaction) -> None:
        begun.append(transaction)

    event.listen(Session, "after_transaction_create", count)
    try:
        assert (await client.get("/unused-session")).status_code == 200
    finally:
        event.remove(Session, "after_transaction_create", count)
    assert begun == []
