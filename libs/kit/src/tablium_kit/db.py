"""Database plumbing: naming conventions, engines, creating a service's database.

Each service declares its own ``Base`` so that two services' tables never share
one ``MetaData`` (tests may load several services in one process)::

    class Base(DeclarativeBase):
        metadata = service_metadata()
"""

from __future__ import annotations

import asyncio
import functools
import weakref
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import asyncpg
import msgspec
from litestar.types import Scope
from sqlalchemy import MetaData
from sqlalchemy.dialects.postgresql import asyncpg as postgresql_asyncpg
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.ext.asyncio import AsyncSession as AsyncSession
from sqlalchemy.sql import Select
from sqlalchemy.types import TypeDecorator

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
    """One row a ``Reader`` returned: columns as attributes (``record.username``), like an ORM object,
    or by name or position (``record["username"]``, ``record[1]``), and iterable in the select's order."""

    __slots__ = ("_index", "_values")

    def __init__(self, values: Sequence[Any], index: Mapping[str, int]) -> None:
        self._values = values
        self._index = index

    def __getattr__(self, name: str) -> Any:
        try:
            return self._values[self._index[name]]
        except KeyError:
            raise AttributeError(name) from None

    def __getitem__(self, key: str | int) -> Any:
        return self._values[key if isinstance(key, int) else self._index[key]]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._values)


class _Compiled:
    """A statement compiled once: its SQL, its parameters in order, and how its rows are read."""

    __slots__ = ("index", "literals", "names", "processors", "sql")

    def __init__(self, statement: Select[Any], dialect: Any) -> None:
        compiled = statement.compile(dialect=dialect)
        if "POSTCOMPILE" in compiled.string:
            # An expanding IN would be re-rendered per call; Postgres takes the list as one array.
            raise ValueError("a reader statement can't use in_(): use column == any_(bindparam(name))")
        self.sql = compiled.string
        self.names = tuple(compiled.positiontup or ())
        # Values written into the statement itself (``column == 5``) are bound too.
        self.literals = dict(compiled.params)
        columns = list(statement.selected_columns)
        self.index = {str(column.key): position for position, column in enumerate(columns)}
        # The columns' own types' conversions (a TypeDecorator's process_result_value: an amount's
        # Decimal -> int), as a session applies them; the driver's decoding (uuid, datetime, JSON, Decimal)
        # is what the dialect's own types would give, so those need nothing.
        self.processors = [
            (position, functools.partial(column.type.process_result_value, dialect=dialect))
            for position, column in enumerate(columns)
            if isinstance(column.type, TypeDecorator)
        ]

    def record(self, row: Any) -> Record:
        if not self.processors:
            return Record(row, self.index)
        values = list(row)
        for position, processor in self.processors:
            values[position] = processor(values[position])
        return Record(values, self.index)


class Reader:
    """The ``db_reader`` dependency: single-statement reads that need no transaction.

    The hot path for reads (ADR 0001, "Hot reads"). A read through the request session costs BEGIN,
    the query and COMMIT (three round trips), the ORM's loading and SQLAlchemy's result processing;
    through SQLAlchemy's pool on an autocommit connection, still its checkout, greenlet hop and
    reset. The reader runs the statement on a pool of its own, asyncpg's (fixed size, opened at
    start-up: no connect under load), in autocommit, as a prepared statement (asyncpg prepares each
    statement once per connection and keeps it). The statement is a Core ``select`` with named
    ``bindparam``s, built once at import (or once per shape: ``functools.cache`` on a builder) and
    compiled once for Postgres. Values come back as a session would give them: decoded by the driver
    (uuid, datetime, list, JSON), then by the column type's result processor where it has one (an
    amount type's int, by its ``process_result_value``). Anything that must see a consistent set of rows,
    or writes, uses ``db_session``.
    """

    def __init__(self, database_url: str, *, pool_size: int = 4) -> None:
        self._dsn = _asyncpg_dsn(database_url)
        self._pool_size = pool_size
        self._pool: asyncpg.Pool | None = None
        self._starting: asyncio.Lock | None = None
        self._dialect = postgresql_asyncpg.dialect(paramstyle="numeric_dollar")  # type: ignore[no-untyped-call]
        # Weakly keyed by the statement object (Select compares by identity): a statement built per call
        # is compiled each time and its entry goes with it; one built once is compiled once.
        self._compiled: weakref.WeakKeyDictionary[Select[Any], _Compiled] = weakref.WeakKeyDictionary()

    async def start(self) -> None:
        """Open the pool (the service's start-up does, so no request pays for a connect)."""
        if self._pool is not None:
            return
        if self._starting is None:
            self._starting = asyncio.Lock()
        async with self._starting:
            if self._pool is None:
                self._pool = await asyncpg.create_pool(
                    self._dsn, min_size=self._pool_size, max_size=self._pool_size, init=_json_codecs
                )

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    def _sql(self, statement: Select[Any], params: Mapping[str, Any]) -> tuple[_Compiled, list[Any]]:
        compiled = self._compiled.get(statement)
        if compiled is None:
            compiled = self._compiled[statement] = _Compiled(statement, self._dialect)
        literals = compiled.literals
        return compiled, [params[name] if name in params else literals[name] for name in compiled.names]

    async def _acquired(self) -> asyncpg.Pool:
        if self._pool is None:
            await self.start()
        assert self._pool is not None
        return self._pool

    async def one_or_none(self, statement: Select[Any], **params: Any) -> Record | None:
        compiled, args = self._sql(statement, params)
        found = await (self._pool or await self._acquired()).fetchrow(compiled.sql, *args)
        return None if found is None else compiled.record(found)

    async def all(self, statement: Select[Any], **params: Any) -> list[Record]:
        compiled, args = self._sql(statement, params)
        found = await (self._pool or await self._acquired()).fetch(compiled.sql, *args)
        return [compiled.record(row) for row in found]


async def _json_codecs(connection: asyncpg.Connection) -> None:
    # JSON decoded as SQLAlchemy's dialect decodes it for sessions (msgspec: same values, faster).
    for name in ("json", "jsonb"):
        await connection.set_type_codec(
            name, encoder=_json_text, decoder=msgspec.json.decode, schema="pg_catalog", format="text"
        )


def _json_text(value: Any) -> str:
    return msgspec.json.encode(value).decode()


async def finish_request_session(scope: Scope, status: int) -> None:
    """Commit the request's session on a 2xx, roll it back otherwise, and close it; no session, no cost."""
    session: AsyncSession | None = scope["state"].pop(REQUEST_SESSION_KEY, None)
    if session is None:
        return
    if not session.in_transaction() and not (session.new or session.dirty or session.deleted):
        # Asked for but never used (a handler that answered from the reader): a commit would begin and end
        # an empty transaction in SQLAlchemy (a greenlet hop and ~10 µs), and there is nothing to close.
        # Objects added but not flushed yet still go through the commit below.
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
