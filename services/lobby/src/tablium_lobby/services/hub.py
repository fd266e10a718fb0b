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
from redis.asyncio import Redis

from tablium_lobby.domain.protocol import Outgoing

log = structlog.get_logger("tablium.lobby.hub")
SOCKETS = Gauge("tablium_lobby_sockets", "WebSockets connected to this lobby process")
QUEUE_LIMIT = 512
PUBLISH_BATCH = 500
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
    """Sockets of this process by table; with Redis, every table message goes through the table's pub/sub
    channel, so a client on any instance gets what any instance committed (in publish order)."""

    def __init__(self, redis: Redis | None = None, prefix: str = "lobby") -> None:
        self.tables: dict[uuid.UUID, set[Connection]] = {}
        self.redis = redis
        self.prefix = prefix
        self._outbox: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._pubsub: Any = None

    def channel(self, table_id: uuid.UUID) -> str:
        return f"{self.prefix}:table:{table_id}"

    async def start(self) -> None:
        if self.redis is None:
            return
        self._pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        # A channel of its own, so the reader has a subscription from the start.
        await self._pubsub.subscribe(f"{self.prefix}:process:{uuid.uuid4()}")
        self._tasks = [
            asyncio.create_task(self._read(), name="hub-read"),
            asyncio.create_task(self._send(), name="hub-send"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._pubsub is not None:
            with contextlib.suppress(Exception):
                await self._pubsub.aclose()

    async def join(self, connection: Connection) -> None:
        """Add a socket; the first of a table subscribes to its channel (awaited: what is published after
        this returns reaches the socket, so a snapshot read afterwards leaves no gap)."""
        connections = self.tables.setdefault(connection.table_id, set())
        first = not connections
        connections.add(connection)
        if first and self._pubsub is not None:
            await self._pubsub.subscribe(self.channel(connection.table_id))
        SOCKETS.inc()

    def leave(self, connection: Connection) -> None:
        connections = self.tables.get(connection.table_id)
        if connections is not None and connection in connections:
            connections.discard(connection)
            SOCKETS.dec()
            if not connections:
                del self.tables[connection.table_id]
                if self._pubsub is not None:
                    self._spawn(self._pubsub.unsubscribe(self.channel(connection.table_id)))

    def _spawn(self, awaitable: Any) -> None:
        task = asyncio.ensure_future(awaitable)
        self._tasks.append(task)
        task.add_done_callback(lambda t: self._tasks.remove(t) if t in self._tasks else None)

    async def _send(self) -> None:
        # One sender, in order: a table's messages reach the channel in the order they were committed.
        # Everything queued goes in one pipeline (one round trip, commands applied in order): one publish
        # per round trip capped the whole process at ~1/RTT messages a second (bench/lobby_bench.py).
        assert self.redis is not None
        while True:
            batch = [await self._outbox.get()]
            while not self._outbox.empty() and len(batch) < PUBLISH_BATCH:
                batch.append(self._outbox.get_nowait())
            pipeline = self.redis.pipeline(transaction=False)
            for channel, payload in batch:
                pipeline.publish(channel, payload)
            try:
                await pipeline.execute()
            except Exception:  # Redis away: those messages are lost to sockets; clients rehydrate by seq
                log.warning("relay publish failed", messages=len(batch))

    async def _read(self) -> None:
        while True:
            try:
                message = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            except Exception:
                log.warning("relay read failed; retrying")
                await asyncio.sleep(0.5)
                continue
            if message is None or message.get("type") != "message":
                continue
            data = message["data"]
            relayed = msgspec.json.decode(data.encode() if isinstance(data, str) else data)
            owners = {int(seat): player for seat, player in relayed["owners"].items()}
            messages = [Outgoing(m, to) for to, m in relayed["messages"]]
            self._deliver(uuid.UUID(relayed["table"]), messages, owners)

    def connected(self, table_id: uuid.UUID, player_id: str) -> bool:
        return any(c.player_id == player_id and not c.closed.is_set() for c in self.tables.get(table_id, ()))

    def publish(self, table_id: uuid.UUID, messages: Iterable[Outgoing], owners: dict[int, str]) -> None:
        """Deliver each message to its audience at ``table_id`` (``owners``: seat -> player id), on every
        instance (through Redis) or in this process only (no Redis)."""
        if self.redis is None:
            self._deliver(table_id, messages, owners)
            return
        payload = {
            "table": str(table_id),
            "owners": {str(seat): player for seat, player in owners.items()},
            "messages": [[m.to, m.message] for m in messages],
        }
        self._outbox.put_nowait((self.channel(table_id), _encode(payload)))

    def _deliver(self, table_id: uuid.UUID, messages: Iterable[Outgoing], owners: dict[int, str]) -> None:
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
