"""Who has a socket at a table, on any instance: so the lease holder can run the disconnect timers.

A sorted set per table in Redis, ``<prefix>:presence:<table>``: player id → expiry (epoch ms). Each
instance adds the players whose sockets it holds when they connect and again every lease renewal (so an
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

# KEYS: the tables' sets; ARGV: the expiry score, the sets' TTL, then each table's players joined by
# newlines (one argument a table, not one a player: packing ~3,500 arguments a second was most of the
# refresh's client CPU at 500 tables).
_REFRESH = """
for i, key in ipairs(KEYS) do
    local members = {}
    for player in string.gmatch(ARGV[i + 2], "[^\\n]+") do
        members[#members + 1] = ARGV[1]
        members[#members + 1] = player
    end
    redis.call('zadd', key, unpack(members))
    redis.call('pexpire', key, ARGV[2])
end
return #KEYS
"""

# Each table's present players joined by newlines (one reply string a table, not one a player).
_PRESENT = (
    "local found = {} for i, key in ipairs(KEYS) do "
    "found[i] = table.concat(redis.call('zrangebyscore', key, ARGV[1], '+inf'), '\\n') end return found"
)


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
        by_table: dict[uuid.UUID, dict[str, None]] = {}  # each table's players, once each, in order
        for table_id, player in connected:
            by_table.setdefault(table_id, {})[player] = None
        if not by_table:
            return
        # One script for all (a pipeline of two commands a table cost ~5% of the lobby's CPU at 500 tables):
        # a ZADD of the table's players, and its set's expiry (a table nobody watches any more: it goes).
        keys = [self.key(table_id) for table_id in by_table]
        players = ["\n".join(group) for group in by_table.values()]
        await self.redis.eval(_REFRESH, len(keys), *keys, until, self.ttl_ms * 2, *players)

    async def gone_many(self, gone: Iterable[tuple[uuid.UUID, str]]) -> None:
        """These (table, player) pairs' sockets closed: no longer present, in one round trip."""
        by_table: dict[uuid.UUID, list[str]] = {}
        for table_id, player in gone:
            by_table.setdefault(table_id, []).append(player)
        if not by_table:
            return
        pipe = self.redis.pipeline(transaction=False)
        for table_id, players in by_table.items():
            pipe.zrem(self.key(table_id), *players)
        await pipe.execute()

    async def present(self, table_id: uuid.UUID) -> set[str]:
        now = int(time.time() * 1000)
        members = await self.redis.zrangebyscore(self.key(table_id), now, "+inf")
        return {m.decode() if isinstance(m, bytes) else m for m in members}

    async def present_many(self, table_ids: list[uuid.UUID]) -> dict[uuid.UUID, set[str]]:
        """:meth:`present` of many tables in one round trip."""
        if not table_ids:
            return {}
        now = int(time.time() * 1000)
        found = await self.redis.eval(_PRESENT, len(table_ids), *(self.key(t) for t in table_ids), now)
        return {table_id: _members(joined) for table_id, joined in zip(table_ids, found, strict=True)}


def _members(joined: bytes | str) -> set[str]:
    text = joined.decode() if isinstance(joined, bytes) else joined
    return set(text.split("\n")) if text else set()
