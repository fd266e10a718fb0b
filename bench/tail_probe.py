"""Timing probes for bench/gateway_tail.py: the player and the gateway app, each wrapped in an ASGI layer that
records, inside the process, what a p99 is made of.

- every HTTP request's time in the app (first ASGI call to the last body message sent);
- the gateway's upstream exchange (request written to response head parsed);
- every garbage collection (generation, pause) through ``gc.callbacks``;
- event-loop stalls: a task sleeping 5 ms at a time records how late it wakes.

``GET /__probe`` answers all of it as JSON and starts afresh. Diagnostics only: granian imports these factories
from bench/ (``bench_apps``'s way); the services and the gateway run unchanged otherwise.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
App = Callable[[Scope, Any, Any], Awaitable[None]]
_TICK = 0.005


class _Record:
    def __init__(self) -> None:
        self.requests: list[float] = []
        self.upstream: list[float] = []
        self.gc: list[tuple[int, float]] = []
        self.lag: list[float] = []
        self.since = time.perf_counter()
        self._gc_started = 0.0
        gc.callbacks.append(self._on_gc)

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter()
        else:
            self.gc.append((info["generation"], (time.perf_counter() - self._gc_started) * 1000))

    def dump(self) -> bytes:
        out = {"seconds": time.perf_counter() - self.since, "requests": self.requests, "upstream": self.upstream,
               "gc": self.gc, "lag": self.lag, "frozen": gc.get_freeze_count()}  # fmt: skip
        self.requests, self.upstream, self.gc, self.lag = [], [], [], []
        self.since = time.perf_counter()
        return json.dumps(out).encode()


def _wrap(app: App, record: _Record) -> App:
    ticking: list[asyncio.Task[None]] = []

    async def tick() -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(_TICK)
            late = (time.perf_counter() - before - _TICK) * 1000
            if late > 1:
                record.lag.append(late)

    async def probed(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        if not ticking:
            ticking.append(asyncio.get_running_loop().create_task(tick()))
        if scope["path"] == "/__probe":
            body = record.dump()
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/json")]})  # fmt: skip
            await send({"type": "http.response.body", "body": body})
            return
        started = time.perf_counter()

        async def timed_send(message: dict[str, Any]) -> None:
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                record.requests.append((time.perf_counter() - started) * 1000)

        await app(scope, receive, timed_send)

    return probed


def player_app() -> App:
    """The player as ``tablium-player serve`` makes it (the kit's ``served_app``: the start-up heap frozen)."""
    from tablium_kit import cli

    os.environ["TABLIUM_SERVED_APP_FACTORY"] = "tablium_player.app:create_app"
    return _wrap(cli.served_app(), _Record())


def gateway_app() -> App:
    from tablium_gateway import transport
    from tablium_gateway.cli import create_app_from_env

    record = _Record()
    exchange = transport.PooledHTTP1Transport.exchange

    async def timed_exchange(self: Any, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return await exchange(self, *args, **kwargs)
        finally:
            record.upstream.append((time.perf_counter() - started) * 1000)

    transport.PooledHTTP1Transport.exchange = timed_exchange  # type: ignore[method-assign]
    return _wrap(create_app_from_env(), record)  # type: ignore[arg-type]
