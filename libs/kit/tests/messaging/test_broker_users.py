"""Issue 11 on the broker itself: a service's user can't publish another service's event type (item 10);
the deploy step declares every consumer's queue (item 3).

Users and vhosts are unique to this run and deleted afterwards (the broker is shared).
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import aio_pika
import aiormq
import pytest
from click.testing import CliRunner

from tablium_kit.cli import service_cli
from tablium_kit.db import drop_database
from tablium_kit.messaging import CATALOG, EventSpec, QueueNames
from tablium_kit.messaging.brokerusers import dev_password, ensure_users
from tablium_kit.messaging.envelope import encode, new_event
from tablium_kit.messaging.testing import AMQP_URL
from tablium_kit.settings import ServiceSettings
from tablium_kit.testing import POSTGRES_URL

from .conftest import _rabbitmqctl

EXCHANGE = "tablium.events"


@pytest.fixture
async def vhost(run_id: str) -> AsyncIterator[tuple[str, str]]:
    name, prefix = f"tablium-test-{run_id}", f"test-{run_id}-"
    await _rabbitmqctl("add_vhost", name)
    try:
        yield name, prefix
    finally:
        for service in ("player", "wallet"):
            await _rabbitmqctl("delete_user", f"{prefix}{service}")
        await _rabbitmqctl("delete_vhost", name)


async def test_a_service_user_publishes_its_own_event_types_and_no_other(vhost: tuple[str, str]) -> None:
    name, prefix = vhost
    await asyncio.to_thread(ensure_users, ["player", "wallet"], vhost=name, user_prefix=prefix)
    url = f"amqp://{prefix}player:{dev_password('player')}@127.0.0.1:5672/{name}"
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.declare_exchange(EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True)
        own = new_event(service="player", type="player.registered", subject="p", data={})
        await exchange.publish(aio_pika.Message(encode(own)), routing_key=own.type)  # confirmed

        forged = new_event(service="player", type="wallet.transfer_posted", subject="t", data={})
        with pytest.raises(aiormq.exceptions.ChannelAccessRefused, match=r"wallet\.transfer_posted"):
            await exchange.publish(aio_pika.Message(encode(forged)), routing_key=forged.type)


def test_migrate_declares_every_consumers_queue_from_the_catalog(run_id: str, tmp_path: Path) -> None:
    """Item 3: ``tablium-<svc> migrate`` leaves every consumer's queue bound, before any consumer ran
    (on a vhost of its own: the queue names are the real ones)."""
    vhost = f"tablium-test-migrate-{run_id}"
    subprocess.run(["rabbitmqctl", "-q", "add_vhost", vhost], check=True)
    database_url = f"{POSTGRES_URL}/t_{run_id}_cli_migrate"
    try:
        subprocess.run(["rabbitmqctl", "-q", "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"], check=True)
        amqp_url = f"{AMQP_URL.rstrip('/')}/{vhost}"
        (tmp_path / "versions").mkdir()
        (tmp_path / "env.py").write_text(
            "from sqlalchemy import MetaData\nfrom tablium_kit.migrations import run_env\nrun_env(MetaData())\n"
        )
        settings = ServiceSettings(service_name="sample", database_url=database_url, amqp_url=amqp_url)
        cli = service_cli("sample", settings=lambda: settings, app_factory="unused:create_app", migrations_dir=tmp_path)
        result = CliRunner().invoke(cli, ["migrate"])
        assert result.exit_code == 0, result.output
        assert "event queues declared for" in result.output
        asyncio.run(_routable(amqp_url, CATALOG))
    finally:
        asyncio.run(drop_database(database_url))
        subprocess.run(["rabbitmqctl", "-q", "delete_vhost", vhost], check=True)


async def _routable(amqp_url: str, catalog: dict[str, EventSpec]) -> None:
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        exchange = await channel.get_exchange(EXCHANGE)
        for event_type, spec in catalog.items():
            for consumer in spec.consumers:
                await channel.declare_queue(QueueNames.for_service(consumer).main, passive=True)
            if spec.consumers:  # returned (PublishError) if no queue were bound to it
                event = new_event(service=event_type.split(".")[0], type=event_type, subject="s", data={})
                await exchange.publish(
                    aio_pika.Message(encode(event), message_id=str(event.id)), event_type, mandatory=True
                )
