"""A throwaway service database with the messaging tables, and helpers shared by the messaging tests."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aio_pika
import pytest
from sqlalchemy import Column, Identity, Integer, String, Table, Uuid, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import DeclarativeBase

from tablium_kit.db import create_engine, service_metadata, session_factory
from tablium_kit.messaging import CloudEvent, Outbox, Relay, messaging_tables
from tablium_kit.messaging.testing import AmqpNames
from tablium_kit.settings import ServiceSettings


class Base(DeclarativeBase):
    metadata = service_metadata()


TABLES = messaging_tables(Base.metadata)
# The publishing service's own state change, committed (or not) with its event.
players = Table("players", Base.metadata, Column("id", String(50), primary_key=True))
# One row per time a consumer's handler took effect.
effects = Table(
    "effects",
    Base.metadata,
    Column("n", Integer, Identity(), primary_key=True),
    Column("event_id", Uuid, nullable=False),
)


@pytest.fixture(scope="module")
async def sessions(make_database: Callable[[str], Awaitable[str]]) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    url = await make_database("messaging")
    engine = create_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    yield session_factory(engine)
    await engine.dispose()


@pytest.fixture(autouse=True)
async def _empty_tables(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as session, session.begin():
        await session.execute(text("TRUNCATE outbox, inbox, players, effects"))


outbox = Outbox("player", TABLES)


def make_relay(sessions: async_sessionmaker[AsyncSession], amqp_names: AmqpNames, **kwargs: Any) -> Relay:
    options: dict[str, Any] = {"poll_interval": 0.2, "publish_timeout": 2.0, "min_backoff": 0.05, "max_backoff": 0.5}
    return Relay(settings_for("player", amqp_names), sessions, TABLES, **(options | kwargs))


async def register(sessions: async_sessionmaker[AsyncSession], player_id: str) -> str:
    async with sessions() as session, session.begin():
        await session.execute(players.insert().values(id=player_id))
        event = await outbox.add(session, type="player.registered", subject=player_id, data={"player_id": player_id})
    return str(event.id)


def settings_for(service: str, amqp_names: AmqpNames) -> ServiceSettings:
    return ServiceSettings(service_name=service, events_exchange=amqp_names.exchange, amqp_url=amqp_names.url)


async def record_effect(session: AsyncSession, event: CloudEvent) -> None:
    await session.execute(effects.insert().values(event_id=event.id))


async def effect_counts(sessions: async_sessionmaker[AsyncSession]) -> dict[str, int]:
    async with sessions() as session:
        rows = await session.execute(select(effects.c.event_id, func.count()).group_by(effects.c.event_id))
        return {str(event_id): count for event_id, count in rows}


async def unpublished(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as session:
        outbox = TABLES.outbox
        count = await session.scalar(select(func.count()).where(outbox.c.published_at.is_(None)))
        return count or 0


async def wait_until(check: Callable[[], Awaitable[bool]], within: float = 15.0) -> None:
    async with asyncio.timeout(within):
        while not await check():  # noqa: ASYNC110 - polling the database is the point
            await asyncio.sleep(0.05)


class Listener:
    """A test's own queue bound to the events exchange: sees every message exactly as published."""

    def __init__(self) -> None:
        self.messages: list[aio_pika.abc.AbstractIncomingMessage] = []

    @property
    def ids(self) -> list[str | None]:
        return [m.message_id for m in self.messages]


@pytest.fixture
async def listen(amqp_names: AmqpNames) -> AsyncIterator[Callable[[str], Awaitable[Listener]]]:
    connection = await aio_pika.connect(amqp_names.url)

    async def bind(routing_key: str) -> Listener:
        listener = Listener()
        channel = await connection.channel()
        exchange = await channel.declare_exchange(amqp_names.exchange, aio_pika.ExchangeType.TOPIC, durable=True)
        queue = await channel.declare_queue(exclusive=True)
        await queue.bind(exchange, routing_key)

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            listener.messages.append(message)
            await message.ack()

        await queue.consume(on_message)
        return listener

    yield bind
    await connection.close()


async def close_my_broker_connections() -> int:
    """Have the broker drop this process's AMQP connections (not other users' of the shared broker)."""
    suffix = f"/{os.getpid()}"
    mine = {
        conn["name"]
        for conn in json.loads(
            await _rabbitmqctl("list_connections", "--formatter", "json", "name", "client_properties")
        )
        if any(p[0] == "connection_name" and str(p[2]).endswith(suffix) for p in conn["client_properties"])
    }
    # close_connection wants the Erlang pid, which only the plain listing prints usably.
    listing = await _rabbitmqctl("list_connections", "--no-table-headers", "pid", "name")
    pids = [line.split("\t")[0] for line in listing.splitlines() if line.split("\t")[-1] in mine]
    for pid in pids:
        await _rabbitmqctl("close_connection", pid, "test: the broker drops us")
    return len(pids)


async def _rabbitmqctl(*args: str) -> str:
    done = await asyncio.to_thread(subprocess.run, ["rabbitmqctl", "-q", *args], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout
