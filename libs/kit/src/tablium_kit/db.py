"""Database plumbing: naming conventions, engines, creating a service's database.

Each service declares its own ``Base`` so that two services' tables never share
one ``MetaData`` (tests may load several services in one process)::

    class Base(DeclarativeBase):
        metadata = service_metadata()
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from typing import Any

import asyncpg
from litestar.types import Scope
from sqlalchemy import MetaData
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.ext.asyncio import AsyncSession as AsyncSession
from sqlalchemy.sql import Select

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def service_metadata() -> MetaData:
    """A fresh ``MetaData`` with stable constraint names (Alembic diffs stay clean)."""
    return MetaData(naming_convention=NAMING_CONVENTION)


def create_engine(database_url: str, *, pool_size: int = 10) -> AsyncEngine:
    # No pre-ping: it costs a round trip on every checkout. A connection the server
    # dropped fails its statement, the pool discards it, and the request is retried by
    # the client; recycling keeps connections from outliving server-side timeouts.
    return create_async_engine(database_url, pool_size=pool_size, max_overflow=pool_size, pool_recycle=1800)


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


# Where a request's session lives once a handler asked for one (``scope["state"]``).
REQUEST_SESSION_KEY = "tablium.db_session"


class RequestSessions:
    """The ``db_session`` dependency: one session per request, opened only when a handler asks.

    The kit's layer (``middleware.py``) commits it when the response starts with a 2xx
    and rolls it back otherwise. advanced-alchemy's plugin did this from a hook that
    Litestar runs on every message of every response, session or not (~3 µs a request).
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self.factory = session_factory(engine)

    def __call__(self, scope: Scope) -> AsyncSession:
        state: dict[str, Any] = scope["state"]
        session: AsyncSession | None = state.get(REQUEST_SESSION_KEY)
        if session is None:
            session = state[REQUEST_SESSION_KEY] = self.factory()
        return session


class Record:
    """One row a ``Reader`` returned: columns as attributes (``record.username``), like an ORM object."""

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[str, Any]) -> None:
        self._values = values

    def __getattr__(self, name: str) -> Any:
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(name) from None


class Reader:
    """The ``db_reader`` dependency: single-statement reads that need no transaction.

    A read through the request session costs BEGIN, the query and COMMIT (three round trips),
    the ORM's loading and SQLAlchemy's result processing: ~1.5 ms of CPU for one row here,
    against ~0.3 ms for this path (ADR 0001). The statement is a Core ``select`` with named
    ``bindparam``s, built once at import; it is compiled once by the engine's dialect and run
    by the driver on a connection from the service's pool, in autocommit (SQLAlchemy resets
    the connection when it goes back, so sessions stay transactional). Values come back as the
    driver decodes them (uuid, datetime, list, and JSON as the dialect registered it), without
    SQLAlchemy's type processors: use it for plain columns. Anything that must see a
    consistent set of rows, or writes, uses ``db_session``.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine.execution_options(isolation_level="AUTOCOMMIT")
        # Weakly keyed by the statement object (Select compares by identity): a statement built per call
        # is compiled each time and its entry goes with it; one built at import is compiled once.
        self._compiled: weakref.WeakKeyDictionary[Select[Any], tuple[str, tuple[str, ...], dict[str, Any]]] = (
            weakref.WeakKeyDictionary()
        )

    def _sql(self, statement: Select[Any], params: Mapping[str, Any]) -> tuple[str, list[Any]]:
        entry = self._compiled.get(statement)
        if entry is None:
            compiled = statement.compile(dialect=self._engine.dialect)
            # Values written into the statement itself (``column == 5``) are bound too.
            entry = self._compiled[statement] = (
                compiled.string,
                tuple(compiled.positiontup or ()),
                dict(compiled.params),
            )
        sql, names, literals = entry
        return sql, [params[name] if name in params else literals[name] for name in names]

    async def one_or_none(self, statement: Select[Any], **params: Any) -> Record | None:
        sql, args = self._sql(statement, params)
        async with self._engine.connect() as connection:
            raw = await connection.get_raw_connection()
            found = await raw.driver_connection.fetchrow(sql, *args)  # type: ignore[union-attr]
        return None if found is None else Record(found)

    async def all(self, statement: Select[Any], **params: Any) -> list[Record]:
        sql, args = self._sql(statement, params)
        async with self._engine.connect() as connection:
            raw = await connection.get_raw_connection()
            found = await raw.driver_connection.fetch(sql, *args)  # type: ignore[union-attr]
        return [Record(row) for row in found]


async def finish_request_session(scope: Scope, status: int) -> None:
    """Commit the request's session on a 2xx, roll it back otherwise, and close it; no session, no cost."""
    session: AsyncSession | None = scope["state"].pop(REQUEST_SESSION_KEY, None)
    if session is None:
        return
    try:
        if 200 <= status < 300:
            await session.commit()
        else:
            await session.rollback()
    finally:
        await session.close()


def _asyncpg_dsn(database_url: str, database: str | None = None) -> str:
    url = make_url(database_url).set(drivername="postgresql")
    if database is not None:
        url = url.set(database=database)
    return url.render_as_string(hide_password=False)


async def ensure_database(database_url: str) -> bool:
    """Create the database named in ``database_url`` when it is missing. Returns True if created."""
    name = make_url(database_url).database
    if not name:
        raise ValueError("database_url names no database")
    conn = await asyncpg.connect(_asyncpg_dsn(database_url, "postgres"))
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if exists:
            return False
        # Identifiers cannot be bound parameters; quote it the Postgres way.
        await conn.execute('CREATE DATABASE "{}"'.format(name.replace('"', '""')))
        return True
    except (asyncpg.DuplicateDatabaseError, asyncpg.UniqueViolationError):
        # Another migrator created it between our check and our CREATE (they start together).
        return False
    finally:
        await conn.close()


async def drop_database(database_url: str) -> None:
    """Drop the database named in ``database_url`` (tests use this to clean up)."""
    name = make_url(database_url).database
    if not name:
        raise ValueError("database_url names no database")
    conn = await asyncpg.connect(_asyncpg_dsn(database_url, "postgres"))
    try:
        await conn.execute('DROP DATABASE IF EXISTS "{}" WITH (FORCE)'.format(name.replace('"', '""')))
    finally:
        await conn.close()
