"""Who is connected to which table in this process, and delivery of table messages to them.

Each connection has its own bounded queue and writer task: publishing never waits on a socket, so a
slow or flooding client cannot hold up the table or the others. A client whose queue overflows is
disconnected (it can rejoin and hydrate).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Iterable
from typing import Any

import msgspec
import structlog
from litestar.connection import WebSocket
from prometheus_client import Gauge

from tablium_lobby.domain.protocol import Outgoing

log = structlog.get_logger("tablium.lobby.hub")
SOCKETS = Gauge("tablium_lobby_sockets", "WebSockets connected to this lobby process")
QUEUE_LIMIT = 512
_encode = msgspec.json.Encoder().encode


class Connection:
    def __init__(self, socket: WebSocket[Any, Any, Any], table_id: uuid.UUID, player_id: str) -> None:
        self.socket = socket
        self.table_id = table_id
        self.player_id = player_id
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue(QUEUE_LIMIT)
        self.closed = asyncio.Event()
        self.writer = asyncio.create_task(self._write(), name=f"ws-writer-{player_id}")

    def send(self, message: dict[str, Any]) -> None:
        self.push(_encode(message))

    def push(self, data: bytes) -> None:
        if self.closed.is_set():
            return
        try:
            self.queue.put_nowait(data)
        except asyncio.QueueFull:
            log.warning("socket too slow; disconnecting it", player=self.player_id)
            self.closed.set()

    async def _write(self) -> None:
        try:
            while not self.closed.is_set():
                data = await self.queue.get()
                if data is None:
                    break
                await self.socket.send_data(data.decode(), mode="text")
        except Exception:  # a socket gone mid-send: the reader notices and cleans up
            self.closed.set()
        finally:
            self.closed.set()

    async def close(self) -> None:
        """Send what is queued (the last error, say) for up to a second, then stop writing."""
        with contextlib.suppress(asyncio.QueueFull):
            self.queue.put_nowait(None)
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(asyncio.shield(self.writer), 1.0)
        self.closed.set()
        self.writer.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self.writer


class Hub:
    def __init__(self) -> None:
        self.tables: dict[uuid.UUID, set[Connection]] = {}

    def join(self, connection: Connection) -> None:
        self.tables.setdefault(connection.table_id, set()).add(connection)
        SOCKETS.inc()

    def leave(self, connection: Connection) -> None:
        connections = self.tables.get(connection.table_id)
        if connections is not None and connection in connections:
            connections.discard(connection)
            SOCKETS.dec()
            if not connections:
                del self.tables[connection.table_id]

    def connected(self, table_id: uuid.UUID, player_id: str) -> bool:
        return any(c.player_id == player_id and not c.closed.is_set() for c in self.tables.get(table_id, ()))

    def publish(self, table_id: uuid.UUID, messages: Iterable[Outgoing], owners: dict[int, str]) -> None:
        """Deliver each message to its audience at ``table_id`` (``owners``: seat -> player id)."""
        connections = self.tables.get(table_id)
        if not connections:
            return
        for outgoing in messages:
            data = _encode(outgoing.message)
            if outgoing.to is None:
                for connection in connections:
                    connection.push(data)
            else:
                owner = owners.get(outgoing.to)
                for connection in connections:
                    if connection.player_id == owner:
                        connection.push(data)
