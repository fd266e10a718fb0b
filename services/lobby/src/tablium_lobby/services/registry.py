"""Redis copies of the lobby's matching state, for fast reads: free seats by table, waiting-list order.

Derived, never a second truth: each key's copy is *replaced whole* from a Postgres snapshot (read under
the list's lock, so the last copy written is the newest), after every change and by a periodic pass, and
rebuilt at start. Nothing is decided from Redis alone: a quick seat takes its candidates from here and
checks each under the table's row lock; a copy that is missing or stale costs a database query, never
a wrong seat. Redis being away degrades to the database (every read here has a fallback).
"""

from __future__ import annotations

import structlog
from redis.asyncio import Redis

log = structlog.get_logger("tablium.lobby.registry")


class Registry:
    def __init__(self, redis: Redis | None, prefix: str) -> None:
        self.redis = redis
        self.prefix = prefix

    def tables_key(self, list_key: str) -> str:
        """Sorted set: open public table id → seats neither taken nor held by an offer (plus a fraction
        below 1 that puts, among tables of as many free seats, the oldest first)."""
        return f"{self.prefix}:registry:{list_key}"

    def waiting_key(self, list_key: str) -> str:
        """Sorted set: player id → place in line (the entry's number), players waiting (not offered) only."""
        return f"{self.prefix}:waiting:{list_key}"

    async def replace(self, list_key: str, free: dict[str, float], waiting: dict[str, int]) -> None:
        if self.redis is None:
            return
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.delete(self.tables_key(list_key), self.waiting_key(list_key))
                if free:
                    pipe.zadd(self.tables_key(list_key), free)
                if waiting:
                    pipe.zadd(self.waiting_key(list_key), waiting)
                await pipe.execute()
        except Exception:  # Redis away: readers fall back to the database; the next pass rewrites it
            log.warning("registry write failed", list_key=list_key)

    async def fullest(self, list_key: str, limit: int = 8) -> list[str] | None:
        """Tables with a free seat, fullest (fewest free) first; None if Redis cannot say."""
        if self.redis is None:
            return None
        try:
            found = await self.redis.zrangebyscore(self.tables_key(list_key), 1, "+inf", start=0, num=limit)
        except Exception:
            return None
        return [m.decode() if isinstance(m, bytes) else str(m) for m in found]

    async def position(self, list_key: str, player_id: str) -> tuple[int, int] | None:
        """(place in line from 1, people waiting), or None if Redis does not know the player waiting."""
        if self.redis is None:
            return None
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.zrank(self.waiting_key(list_key), player_id)
                pipe.zcard(self.waiting_key(list_key))
                rank, count = await pipe.execute()
        except Exception:
            return None
        return None if rank is None else (int(rank) + 1, int(count))
