"""Who has a socket at a table, on any instance: so the lease holder can run the disconnect timers.

A sorted set per table in Redis, ``<prefix>:presence:<table>``: player id → expiry (epoch ms). Each
instance adds the players whose sockets it holds when they connect and again every lease round (so an
instance that dies takes its players' presence with it within ``ttl_s``), and removes a player when its
last socket there closes (another instance holding one for the same player adds it back at its next
round, well within the disconnect grace). The holder of a table's lease starts a player's absence timer
when the player is missing from the set, and looks again before sitting the player out or freeing the seat.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from typing import Any


class Presence:
    def __init__(self, redis: Any, prefix: str, ttl_s: float) -> None:
        self.redis = redis
        self.prefix = prefix
        self.ttl_ms = int(ttl_s * 1000)

    def key(self, table_id: uuid.UUID) -> str:
        return f"{self.prefix}:presence:{table_id}"

    async def refresh(self, connected: Iterable[tuple[uuid.UUID, str]]) -> None:
        """Mark these (table, player) pairs present for another ``ttl_s``."""
        until = int(time.time() * 1000) + self.ttl_ms
        pipe = self.redis.pipeline(transaction=False)
        tables = set()
        for table_id, player in connected:
            pipe.zadd(self.key(table_id), {player: until})
            tables.add(table_id)
        for table_id in tables:
            pipe.pexpire(self.key(table_id), self.ttl_ms * 2)  # a table nobody watches any more: its set goes
        if tables:
            await pipe.execute()

    async def gone(self, table_id: uuid.UUID, player: str) -> None:
        await self.redis.zrem(self.key(table_id), player)

    async def present(self, table_id: uuid.UUID) -> set[str]:
        now = int(time.time() * 1000)
        members = await self.redis.zrangebyscore(self.key(table_id), now, "+inf")
        return {m.decode() if isinstance(m, bytes) else m for m in members}

    async def present_many(self, table_ids: list[uuid.UUID]) -> dict[uuid.UUID, set[str]]:
        """:meth:`present` of many tables in one round trip."""
        if not table_ids:
            return {}
        now = int(time.time() * 1000)
        pipe = self.redis.pipeline(transaction=False)
        for table_id in table_ids:
            pipe.zrangebyscore(self.key(table_id), now, "+inf")
        found = await pipe.execute()
        return {
            table_id: {m.decode() if isinstance(m, bytes) else m for m in members}
            for table_id, members in zip(table_ids, found, strict=True)
        }
