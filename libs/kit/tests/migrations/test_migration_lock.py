"""Migrations at start-up: many migrators on one new database at once, the schema made once."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg

from tablium_kit.db import _asyncpg_dsn

ENV = """
from sqlalchemy import MetaData
from tablium_kit.migrations import run_env
run_env(MetaData())
"""
# Plain CREATE TABLE and INSERT: a second run of this revision fails (table exists) or leaves two rows.
REVISION = """
import time
from alembic import op
revision = "0001"
down_revision = None

def upgrade() -> None:
    op.execute("CREATE TABLE runs (n int)")
    time.sleep(0.5)  # everyone else is surely waiting, or would be applying it a second time
    op.execute("INSERT INTO runs VALUES (1)")
"""
MIGRATOR = """
import asyncio, sys
from pathlib import Path
from tablium_kit import db, migrations
asyncio.run(db.ensure_database(sys.argv[1]))
migrations.upgrade(sys.argv[1], Path(sys.argv[2]))
"""


async def test_concurrent_migrators_on_a_new_database_all_succeed_and_migrate_once(
    make_database: Callable[[str], Awaitable[str]], tmp_path: Path
) -> None:
    (tmp_path / "versions").mkdir()
    (tmp_path / "env.py").write_text(ENV)
    (tmp_path / "versions" / "0001_runs.py").write_text(REVISION)
    url = await make_database("migrators")  # registered for clean-up...
    admin = await asyncpg.connect(_asyncpg_dsn(url, "postgres"))
    try:  # ...and dropped again, so the migrators find no database, as on a first deploy
        await admin.execute(f'DROP DATABASE "{url.rsplit("/", 1)[1]}"')
    finally:
        await admin.close()

    migrators = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", MIGRATOR, url, str(tmp_path), stderr=asyncio.subprocess.PIPE
        )
        for _ in range(4)
    ]
    results = await asyncio.gather(*(m.communicate() for m in migrators))
    assert [m.returncode for m in migrators] == [0] * 4, [err.decode()[-2000:] for _, err in results]

    conn = await asyncpg.connect(_asyncpg_dsn(url))
    try:
        assert await conn.fetchval("SELECT count(*) FROM runs") == 1
        assert await conn.fetchval("SELECT version_num FROM alembic_version") == "0001"
    finally:
        await conn.close()
