"""Alembic migrations, one history per service.

A service keeps ``db/migrations/`` (``env.py``, ``script.py.mako``, ``versions/``).
Its ``env.py`` is two lines::

    from tablium_kit.migrations import run_env
    from tablium_<name>.db.models import Base
    run_env(Base.metadata)

The database URL comes from the service's settings, passed in the Alembic config.

Every worker of every instance migrates at start-up (outside production), so migrations run under a
Postgres advisory lock: the first migrator applies them, the others wait for it, then find nothing to do.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command, context, op
from alembic.config import Config
from sqlalchemy import MetaData, pool, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from tablium_kit.db import service_metadata
from tablium_kit.messaging.tables import MessagingTables, messaging_tables

# Advisory locks are per database, so one key for every service is enough ("tablium migrate" in ASCII).
MIGRATION_LOCK_KEY = 0x7461626C6D6967


def alembic_config(database_url: str, migrations_dir: Path) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str, migrations_dir: Path, revision: str = "head") -> None:
    """Apply migrations up to ``revision`` (blocking; run it in a thread from async code)."""
    command.upgrade(alembic_config(database_url, migrations_dir), revision)


def revision(database_url: str, migrations_dir: Path, message: str) -> None:
    """Autogenerate a new revision from the models (a developer command)."""
    command.revision(alembic_config(database_url, migrations_dir), message=message, autogenerate=True)


def run_env(target_metadata: MetaData) -> None:
    """Body of every service's Alembic ``env.py`` (online mode, async engine)."""
    url = context.config.get_main_option("sqlalchemy.url")
    if url is None:
        raise RuntimeError("alembic config has no sqlalchemy.url")

    def migrate(connection: Connection) -> None:
        context.configure(connection=connection, target_metadata=target_metadata, compare_type=True)
        with context.begin_transaction():
            # Taken before Alembic reads the current revision, held until the migrations commit; a
            # waiting migrator then reads the revision the first one wrote (READ COMMITTED).
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
            context.run_migrations()

    async def run() -> None:
        engine = create_async_engine(url, poolclass=pool.NullPool)
        async with engine.connect() as connection:
            await connection.run_sync(migrate)
        await engine.dispose()

    asyncio.run(run())


def create_messaging_tables() -> None:
    """Create the kit's ``outbox`` and ``inbox`` inside a service's migration (its first one).

    The shape is :func:`tablium_kit.messaging.tables.messaging_tables`, so a service's migration doesn't
    repeat the DDL Alembic would autogenerate for them, and every service's tables stay alike.
    """
    metadata, tables = _messaging_metadata()
    metadata.create_all(op.get_bind(), tables=[tables.inbox, tables.outbox], checkfirst=False)


def drop_messaging_tables() -> None:
    """The downgrade of :func:`create_messaging_tables`."""
    metadata, tables = _messaging_metadata()
    metadata.drop_all(op.get_bind(), tables=[tables.outbox, tables.inbox], checkfirst=False)


def _messaging_metadata() -> tuple[MetaData, MessagingTables]:
    metadata = service_metadata()
    return metadata, messaging_tables(metadata)
