"""A socket held for its snapshot gets every batch newer than its snapshot, even one the table's delivery
order already passed: two sockets join, one reads its snapshot before a commit and one after it, and the
commit's publish comes last (the bench's "seq gaps": a time bank or sit-out at a table's start, during
the connect storm; ADR 0012, fifth pass)."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

from tablium_lobby.domain.protocol import Outgoing
from tablium_lobby.services.hub import Connection, Hub


class _Socket:
    """An accepted socket: the hub's writers send the ASGI ``websocket.send`` event on it."""

    connection_state = "receive"

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    async def send(self, event: dict[str, Any]) -> None:
        assert event["type"] == "websocket.send"
        assert event["bytes"] is None
        self.sent.append(json.loads(event["text"]))


async def _joined(hub: Hub, table: uuid.UUID, player: str) -> tuple[Connection, _Socket]:
    socket = _Socket()
    connection = Connection(socket, table, player)  # type: ignore[arg-type]
    await hub.join(connection)
    return connection, socket


def _batch(seq: int) -> list[Outgoing]:
    return [Outgoing({"type": "time-bank", "seq": seq})]


async def _seqs(*sockets: _Socket) -> list[list[int]]:
    for _ in range(5):
        await asyncio.sleep(0)  # the writers send what is queued
    return [[m["seq"] for m in socket.sent] for socket in sockets]


async def _close(*connections: Connection) -> None:
    for connection in connections:
        await connection.close()


async def test_a_batch_waiting_for_the_first_snapshot_reaches_a_socket_with_an_older_one() -> None:
    hub, table = Hub(), uuid.uuid4()
    old, old_socket = await _joined(hub, table, "reads at 2")
    new, new_socket = await _joined(hub, table, "reads at 3")
    hub.publish(table, _batch(3), {})  # committed after the first read, before the second
    hub.snapshot_sent(new, 3)  # the table's order starts at 3
    hub.snapshot_sent(old, 2)
    hub.publish(table, _batch(4), {})
    assert await _seqs(old_socket, new_socket) == [[3, 4], [4]]
    await _close(old, new)


async def test_a_late_batch_reaches_a_socket_still_held_with_an_older_snapshot_in_order() -> None:
    hub, table = Hub(), uuid.uuid4()
    old, old_socket = await _joined(hub, table, "reads at 2")
    new, new_socket = await _joined(hub, table, "reads at 3")
    hub.snapshot_sent(new, 3)  # its snapshot has 3; the publish of 3 comes after
    hub.publish(table, _batch(4), {})
    hub.publish(table, _batch(3), {})  # late for the order, not for the socket still reading
    hub.snapshot_sent(old, 2)
    hub.publish(table, _batch(5), {})
    assert await _seqs(old_socket, new_socket) == [[3, 4, 5], [4, 5]]
    await _close(old, new)
