"""The broker connection relays and consumers use: robust (it reconnects by itself) and named."""

from __future__ import annotations

import os
import socket

import aio_pika
from aio_pika.abc import AbstractRobustConnection

# Seconds between reconnection attempts; aio-pika's default of 5 s is a long outage for a game.
RECONNECT_INTERVAL = 1.0


def connection_name(service: str, role: str) -> str:
    """How the connection shows in ``rabbitmqctl list_connections``: service, role, host/pid."""
    return f"tablium {service} {role} {socket.gethostname()}/{os.getpid()}"


async def connect(amqp_url: str, service: str, role: str) -> AbstractRobustConnection:
    return await aio_pika.connect_robust(
        amqp_url,
        reconnect_interval=RECONNECT_INTERVAL,
        client_properties={"connection_name": connection_name(service, role)},
    )
