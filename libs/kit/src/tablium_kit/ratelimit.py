"""Fixed-window counters in Redis, shared by every instance of a service."""

from __future__ import annotations

from redis.asyncio import Redis

from tablium_kit.errors import TooManyRequests


class RateLimiter:
    """``hit(key)`` counts one attempt; past ``limit`` per ``window_s`` it raises 429."""

    def __init__(self, redis: Redis, *, prefix: str, limit: int, window_s: int) -> None:
        self._redis = redis
        self._prefix = prefix
        self.limit = limit
        self.window_s = window_s

    async def hit(self, key: str, *, what: str) -> None:
        redis_key = f"{self._prefix}:{key}"
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incr(redis_key)
            pipe.expire(redis_key, self.window_s, nx=True)
            pipe.ttl(redis_key)
            count, _, ttl = await pipe.execute()
        if int(count) > self.limit:
            raise TooManyRequests(f"too many {what}; try again in {max(int(ttl), 1)} s", retry_after_s=max(int(ttl), 1))

    async def check(self, key: str, *, what: str) -> None:
        """Raise 429 if ``key`` is already over its limit, without counting an attempt."""
        redis_key = f"{self._prefix}:{key}"
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.get(redis_key)
            pipe.ttl(redis_key)
            count, ttl = await pipe.execute()
        if count is not None and int(count) >= self.limit:
            raise TooManyRequests(f"too many {what}; try again in {max(int(ttl), 1)} s", retry_after_s=max(int(ttl), 1))

    async def reset(self, key: str) -> None:
        await self._redis.delete(f"{self._prefix}:{key}")
