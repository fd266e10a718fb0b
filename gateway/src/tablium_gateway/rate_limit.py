"""Kong's rate-limiting plugin with ``limit_by: ip`` and ``policy: local``.

Fixed windows aligned on the clock (a minute window starts at :00), one counter per
client IP and window; a request is refused when any window's count has reached its
limit, and a refused request is not counted. Counters live in this process, as
Kong's local policy keeps them per node.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from tablium_gateway.config import RATE_LIMIT_PERIODS, RateLimitConfig


@dataclass(frozen=True, slots=True)
class RateLimitDecision:
    allowed: bool
    headers: list[tuple[bytes, bytes]]


class _Window:
    __slots__ = ("counts", "start")

    def __init__(self, start: int) -> None:
        self.start = start
        self.counts: dict[str, int] = {}


class LocalRateLimiter:
    def __init__(self, conf: RateLimitConfig, clock: Callable[[], float] = time.time) -> None:
        self._conf = conf
        self._clock = clock
        self._windows: dict[str, _Window] = {period: _Window(-1) for period, _ in conf.limits}
        self._limit_headers = {
            period: (
                f"x-ratelimit-limit-{period}".encode(),
                f"x-ratelimit-remaining-{period}".encode(),
            )
            for period, _ in conf.limits
        }

    def hit(self, identifier: str) -> RateLimitDecision:
        now = self._clock()
        usage: list[tuple[str, int, int, int]] = []  # period, limit, used, seconds to reset
        stop: str | None = None
        for period, limit in self._conf.limits:
            seconds = RATE_LIMIT_PERIODS[period]
            start = int(now // seconds) * seconds
            window = self._windows[period]
            if window.start != start:
                window = self._windows[period] = _Window(start)
            used = window.counts.get(identifier, 0)
            if used >= limit and stop is None:
                stop = period
            usage.append((period, limit, used, max(1, int(start + seconds - now))))
        if stop is None:
            for period, _, used, _ in usage:
                self._windows[period].counts[identifier] = used + 1
        headers = [] if self._conf.hide_client_headers and stop is None else self._headers(usage, stop)
        return RateLimitDecision(stop is None, headers)

    def _headers(self, usage: list[tuple[str, int, int, int]], stop: str | None) -> list[tuple[bytes, bytes]]:
        headers: list[tuple[bytes, bytes]] = []
        # Like Kong: RateLimit-* describe the window with the fewest requests left
        # (the longer one on a tie); X-RateLimit-*-<Period> describe each window.
        best: tuple[int, int, int, int] | None = None  # remaining, -seconds, limit, reset
        for period, limit, used, reset in usage:
            remaining = max(0, limit - used - (1 if stop is None or stop == period else 0))
            limit_name, remaining_name = self._limit_headers[period]
            if not self._conf.hide_client_headers:
                headers.append((limit_name, str(limit).encode()))
                headers.append((remaining_name, str(remaining).encode()))
            candidate = (remaining, -RATE_LIMIT_PERIODS[period], limit, reset)
            if best is None or candidate[:2] < best[:2]:
                best = candidate
        assert best is not None
        remaining, _, limit, reset = best
        if not self._conf.hide_client_headers:
            headers.append((b"ratelimit-limit", str(limit).encode()))
            headers.append((b"ratelimit-remaining", str(remaining).encode()))
            headers.append((b"ratelimit-reset", str(reset).encode()))
        if stop is not None:
            headers.append((b"retry-after", str(reset).encode()))
        return headers
