"""Who is connected to which table in this process, and delivery of table messages to them.

Each connection has its own bounded queue and writer task: publishing never waits on a socket, so a
slow or flooding client cannot hold up the table or the others. A client whose queue overflows is
disconnected (it can rejoin and hydrate).

Commit order: a table's writers are many (the runner of any instance, seating on any instance), each
publishing after its own commit, so two commits' messages can reach Redis, and this process, in either
order. Delivery puts them back in ``seq`` order: a batch (one commit's messages, one ``seq``) goes out
when it is the next ``seq`` after the last delivered; a later one waits for the missing one up to
``reorder_wait_s`` (a writer that died between its commit and its publish), then goes out anyway, and a
client that sees the gap asks for a snapshot. Each socket also drops batches at or below the ``seq`` of
the snapshot it was last sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import msgspec
import structlog
from litestar.connection import WebSocket
from prometheus_client import Gauge
from redis.asyncio import Redis

from tablium_lobby.domain.protocol import Outgoing
from tablium_lobby.services import stages

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
        # The seq of the last snapshot sent: batches at or below it are already in it.
        self.min_seq = -1
        # While a snapshot is being read and sent, the table's batches wait here (None: not holding), so
        # nothing reaches the socket before the snapshot it must be applied to, and nothing after it is lost.
        self.held: list[tuple[int | None, bytes]] | None = None
        # (the message, its seq, when it was queued: services/stages.py), or None: stop writing.
        self.queue: asyncio.Queue[tuple[bytes, int | None, float] | None] = asyncio.Queue(QUEUE_LIMIT)
        self.closed = asyncio.Event()
        self.writer = asyncio.create_task(self._write(), name=f"ws-writer-{player_id}")

    def send(self, message: dict[str, Any]) -> None:
        self.push(_encode(message))

    def hold(self) -> None:
        """Keep the table's batches back until :meth:`release` (call before reading a snapshot)."""
        if self.held is None:
            self.held = []

    def deliver(self, seq: int | None, data: bytes) -> None:
        """A table batch's message: held, dropped if the last snapshot already has it, or queued."""
        if self.held is not None:
            self.held.append((seq, data))
        elif seq is None or seq > self.min_seq:
            self.push(data, seq)

    def release(self, snapshot_seq: int) -> None:
        """The snapshot at ``snapshot_seq`` was queued: what was held and is newer follows it, in seq order
        (a batch the table's order had passed can reach a held socket after later ones: see Hub._arrive)."""
        self.min_seq = max(self.min_seq, snapshot_seq)
        held, self.held = self.held or [], None
        held.sort(key=_held_order)  # stable: one batch's messages keep their order
        for seq, data in held:
            self.deliver(seq, data)

    def push(self, data: bytes, seq: int | None = None) -> None:
        if self.closed.is_set():
            return
        try:
            self.queue.put_nowait((data, seq, time.time()))
        except asyncio.QueueFull:
            log.warning("socket too slow; disconnecting it", player=self.player_id)
            self.closed.set()

    async def _write(self) -> None:
        send = self.socket.send
        try:
            while not self.closed.is_set():
                item = await self.queue.get()
                if item is None:
                    break
                data, seq, queued = item
                began = time.time()
                # The ASGI event itself, not ``send_data`` (which builds the same event a layer further in):
                # this runs for every message to every socket.
                if self.socket.connection_state == "init":  # not accepted yet: send_data accepts first
                    await self.socket.send_data(data.decode(), mode="text")
                else:
                    await send({"type": "websocket.send", "bytes": None, "text": data.decode()})
                ended = time.time()
                stages.QUEUED.observe(began - queued)
                stages.SENT.observe(ended - began)
                if seq is not None and stages.tracing() and b'"action-broadcast"' in data[:40]:
                    stages.socket_written(self.table_id, seq, self.player_id, queued, began, ended)
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


Batch = tuple[list[Outgoing], dict[int, str]]


def _held_order(item: tuple[int | None, bytes]) -> int:
    return -1 if item[0] is None else item[0]


def batch_seq(messages: Iterable[Outgoing]) -> int | None:
    seqs = [m.message["seq"] for m in messages if isinstance(m.message.get("seq"), int)]
    return max(seqs) if seqs else None


@dataclass
class _Order:
    """A table's delivery order in this process."""

    last: int | None = None  # the seq last delivered (None: waiting for the first socket's snapshot)
    waiting: dict[int, list[Batch]] = field(default_factory=dict)
    timer: asyncio.TimerHandle | None = None


class Hub:
    """Sockets of this process by table; with Redis, every table message goes through the table's pub/sub
    channel, so a client on any instance gets what any instance committed, in ``seq`` order."""

    def __init__(
        self, redis: Redis | None = None, prefix: str = "lobby", instance: str = "", reorder_wait_s: float = 1.0
    ) -> None:
        self.tables: dict[uuid.UUID, set[Connection]] = {}
        self.redis = redis
        self.prefix = prefix
        self.instance = instance or uuid.uuid4().hex
        # How this process's batches begin on a channel (``origin`` is encoded first).
        self._own = _encode({"origin": self.instance})[:-1] + b","
        self.reorder_wait_s = reorder_wait_s
        # Called with the messages another instance published for a table (the lease holder follows them).
        self.on_relayed: Callable[[uuid.UUID, list[Outgoing]], None] | None = None
        # Called with what a sibling process sent to this one alone (services/forward.py).
        self.on_direct: Callable[[bytes], None] | None = None
        self._direct = (self.direct_channel(self.instance), self.direct_channel(self.instance).encode())
        self._watched: set[uuid.UUID] = set()
        self._subscribed: set[uuid.UUID] = set()
        self._orders: dict[uuid.UUID, _Order] = {}
        self._outbox: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._pubsub: Any = None

    def channel(self, table_id: uuid.UUID) -> str:
        return f"{self.prefix}:table:{table_id}"

    def direct_channel(self, instance: str) -> str:
        return f"{self.prefix}:process:{instance}"

    async def start(self) -> None:
        if self.redis is None:
            return
        self._pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        # A channel of its own (what sibling processes send to this one alone): the reader has a
        # subscription from the start.
        await self._pubsub.subscribe(self.direct_channel(self.instance))
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
        connection.hold()  # until its snapshot is sent (snapshot_sent)
        self.tables.setdefault(connection.table_id, set()).add(connection)
        self._orders.setdefault(connection.table_id, _Order())
        await self._subscribe(connection.table_id)
        SOCKETS.inc()

    def snapshot_sent(self, connection: Connection, seq: int) -> None:
        """``connection`` was sent a snapshot at ``seq``: it needs only later batches; the table's first
        snapshot also tells where its delivery order starts."""
        order = self._orders.get(connection.table_id)
        if order is not None and order.last is None:
            order.last = seq
            # Batches that came before the table's first snapshot: the later ones go on in order; the others
            # still to every socket held (each may have read an older snapshot than this one).
            self._flush(connection.table_id, order)
        connection.release(seq)

    def leave(self, connection: Connection) -> None:
        connections = self.tables.get(connection.table_id)
        if connections is not None and connection in connections:
            connections.discard(connection)
            SOCKETS.dec()
            if not connections:
                del self.tables[connection.table_id]
                order = self._orders.pop(connection.table_id, None)
                if order is not None and order.timer is not None:
                    order.timer.cancel()
                self._unsubscribe(connection.table_id)

    def watch(self, table_id: uuid.UUID) -> None:
        """Hear a table's messages even with no socket here (the lease holder follows other instances)."""
        self._watched.add(table_id)
        if self._pubsub is not None and table_id not in self._subscribed:
            self._spawn(self._subscribe(table_id))

    def unwatch(self, table_id: uuid.UUID) -> None:
        self._watched.discard(table_id)
        self._unsubscribe(table_id)

    async def _subscribe(self, table_id: uuid.UUID) -> None:
        if self._pubsub is not None and table_id not in self._subscribed:
            self._subscribed.add(table_id)
            await self._pubsub.subscribe(self.channel(table_id))

    def _unsubscribe(self, table_id: uuid.UUID) -> None:
        if table_id in self.tables or table_id in self._watched or table_id not in self._subscribed:
            return
        self._subscribed.discard(table_id)
        if self._pubsub is not None:
            self._spawn(self._pubsub.unsubscribe(self.channel(table_id)))

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
            data = data.encode() if isinstance(data, str) else data
            if message.get("channel") in self._direct:
                if self.on_direct is not None:
                    try:
                        self.on_direct(data)
                    except Exception:
                        log.exception("a direct message failed")
                continue
            if data.startswith(self._own):
                continue  # delivered here when it was published
            relayed = msgspec.json.decode(data)
            owners = {int(seat): player for seat, player in relayed["owners"].items()}
            messages = [Outgoing(m, to) for to, m in relayed["messages"]]
            table_id = uuid.UUID(relayed["table"])
            if self.on_relayed is not None:
                try:
                    self.on_relayed(table_id, messages)
                except Exception:
                    log.exception("following a relayed commit failed", table=str(table_id))
            self._arrive(table_id, messages, owners)

    def send_direct(self, instance: str, payload: bytes) -> None:
        """To one process alone, in order with this process's table messages (the same pipeline)."""
        if self.redis is not None:
            self._outbox.put_nowait((self.direct_channel(instance), payload))

    def connected(self, table_id: uuid.UUID, player_id: str) -> bool:
        return any(c.player_id == player_id and not c.closed.is_set() for c in self.tables.get(table_id, ()))

    def publish(self, table_id: uuid.UUID, messages: Iterable[Outgoing], owners: dict[int, str]) -> None:
        """Deliver each message to its audience at ``table_id`` (``owners``: seat -> player id): here at
        once, and on every other instance through Redis. This process's own batches are not taken back
        from the channel (a Redis round trip and a decode less on every action; the seq order is kept
        by :meth:`_arrive` whichever way a batch comes)."""
        messages = list(messages)
        self._arrive(table_id, messages, owners)
        if self.redis is None:
            return
        payload = {
            "origin": self.instance,
            "table": str(table_id),
            "owners": {str(seat): player for seat, player in owners.items()},
            "messages": [[m.to, m.message] for m in messages],
        }
        self._outbox.put_nowait((self.channel(table_id), _encode(payload)))

    def _arrive(self, table_id: uuid.UUID, messages: list[Outgoing], owners: dict[int, str]) -> None:
        """A batch for ``table_id``: delivered now if it is the next seq, else kept until it is."""
        order = self._orders.get(table_id)
        if order is None:
            return  # no socket here for this table
        seq = batch_seq(messages)
        if seq is None:
            self._deliver(table_id, messages, owners)  # not state (table-closing): no place in the order
            return
        if order.last is not None and seq <= order.last:
            # Behind the table's order (a socket's snapshot already had it): not for the sockets that follow
            # the order, but a socket still held for its snapshot may have read an older one (its snapshot
            # was read before this commit, another socket's after it, and this publish came last). It gets
            # the batch, and drops it at release if its snapshot has it.
            log.info("late batch: to held sockets only", table=str(table_id), seq=seq, last=order.last)
            self._deliver(table_id, messages, owners, held_only=True)
            return
        order.waiting.setdefault(seq, []).append((messages, owners))
        self._flush(table_id, order)

    def _flush(self, table_id: uuid.UUID, order: _Order) -> None:
        for seq in sorted(s for s in order.waiting if order.last is not None and s <= order.last):
            for messages, owners in order.waiting.pop(seq):  # as a late batch (_arrive): held sockets only
                self._deliver(table_id, messages, owners, held_only=True)
        while order.last is not None and order.last + 1 in order.waiting:
            order.last += 1
            for messages, owners in order.waiting.pop(order.last):
                self._deliver(table_id, messages, owners)
        if order.waiting and order.timer is None:
            order.timer = asyncio.get_running_loop().call_later(self.reorder_wait_s, self._give_up, table_id)
        elif not order.waiting and order.timer is not None:
            order.timer.cancel()
            order.timer = None

    def _give_up(self, table_id: uuid.UUID) -> None:
        """The batch awaited never came (its writer died after committing): go on from the next one."""
        order = self._orders.get(table_id)
        if order is None:
            return
        order.timer = None
        if order.waiting:
            first = min(order.waiting)
            log.warning("seq gap skipped", table=str(table_id), missing_from=(order.last or 0) + 1, next=first)
            order.last = first - 1
            self._flush(table_id, order)

    def _deliver(
        self, table_id: uuid.UUID, messages: Iterable[Outgoing], owners: dict[int, str], *, held_only: bool = False
    ) -> None:
        connections = self.tables.get(table_id)
        if not connections:
            return
        if held_only:
            connections = {c for c in connections if c.held is not None}
            if not connections:
                return
        for outgoing in messages:
            data = _encode(outgoing.message)
            seq = outgoing.message.get("seq")
            position = seq if isinstance(seq, int) else None
            if outgoing.to is None:
                for connection in connections:
                    connection.deliver(position, data)
            else:
                owner = owners.get(outgoing.to)
                for connection in connections:
                    if connection.player_id == owner:
                        connection.deliver(position, data)
