"""Pytest fixtures for tests against the real Postgres, Redis and RabbitMQ.

Loaded automatically (a ``pytest11`` entry point) wherever tablium-kit is installed.
Each test run gets its own databases and its own exchange/queue names, removed at
the end, so runs never see each other's data.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import pytest

from tablium_kit import db
from tablium_kit.localchain import LocalChain
from tablium_kit.messaging.testing import AmqpNames as AmqpNames
from tablium_kit.messaging.testing import amqp_names as amqp_names
from tablium_kit.private_infra import MissingBinaries, PrivatePostgres, PrivateRabbit

RUN_ID = os.environ.get("TABLIUM_TEST_RUN_ID") or uuid.uuid4().hex[:8]
POSTGRES_URL = os.environ.get("TABLIUM_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432")


@pytest.fixture(scope="session")
def run_id() -> str:
    """A short id unique to this test run, used to name databases, exchanges and queues."""
    return RUN_ID


@pytest.fixture(scope="session")
async def make_database(run_id: str) -> AsyncIterator[Callable[[str], Awaitable[str]]]:
    """Factory: ``await make_database("player")`` creates a fresh, empty database and returns its URL.

    Every database made this way is dropped when the test session ends.
    """
    made: list[str] = []
    counter = iter(range(1_000_000))

    async def make(name: str) -> str:
        url = f"{POSTGRES_URL}/t_{run_id}_{name}_{next(counter)}"
        await db.ensure_database(url)
        made.append(url)
        return url

    yield make
    for url in made:
        await db.drop_database(url)


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    """A PostgreSQL cluster of this test's own, started, that it may stop; deleted afterwards."""
    try:
        postgres = PrivatePostgres()
    except MissingBinaries as exc:
        pytest.skip(str(exc))
    try:
        postgres.start()
        yield postgres
    finally:
        postgres.remove()


@pytest.fixture
def private_rabbit() -> Iterator[PrivateRabbit]:
    """A RabbitMQ node of this test's own, started, that it may stop; deleted afterwards."""
    try:
        rabbit = PrivateRabbit()
    except MissingBinaries as exc:
        pytest.skip(str(exc))
    try:
        rabbit.start()
        yield rabbit
    finally:
        rabbit.remove()


@pytest.fixture(scope="module")
def local_chain() -> Iterator[LocalChain]:
    """An anvil node of this test module's own on a free port (reorgs and snapshots reach no one else).

    Not skipped when anvil is missing: the set-up installs it (scripts/ensure-anvil.sh)."""
    chain = LocalChain()
    try:
        chain.start()
        yield chain
    finally:
        chain.remove()
