"""Liveness and readiness.

``/health`` answers as long as the process serves requests. ``/ready`` checks
every dependency the service registered (database, Redis, broker) and answers
503 with the failing names while any is down, so a load balancer or Kubernetes
stops sending traffic without killing the pod.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from litestar import Controller, Response, get
from litestar.datastructures import State

ReadinessCheck = Callable[[], Awaitable[None]]
CHECK_TIMEOUT_S = 2.0


class NotReady(Exception):
    """A check's failure whose message is worth showing in ``/ready`` (a state and its reason)."""


class Readiness:
    """Named dependency checks; each raises (or times out) when its dependency is unusable."""

    def __init__(self) -> None:
        self.checks: dict[str, ReadinessCheck] = {}

    def add(self, name: str, check: ReadinessCheck) -> None:
        self.checks[name] = check

    async def run(self) -> dict[str, str]:
        async def one(check: ReadinessCheck) -> str:
            try:
                await asyncio.wait_for(check(), CHECK_TIMEOUT_S)
            except NotReady as exc:
                return f"down: {exc}"
            except Exception as exc:  # any failure means "not ready"; the reason is reported
                return f"down: {type(exc).__name__}"
            return "up"

        names = list(self.checks)
        results = await asyncio.gather(*(one(self.checks[name]) for name in names))
        return dict(zip(names, results, strict=True))


class HealthController(Controller):
    include_in_schema = False

    @get("/health", sync_to_thread=False)
    def health(self) -> dict[str, str]:
        return {"status": "ok"}

    @get("/ready")
    async def ready(self, state: State) -> Response[dict[str, Any]]:
        readiness: Readiness = state.readiness
        checks = await readiness.run()
        ok = all(result == "up" for result in checks.values())
        return Response({"status": "ready" if ok else "not ready", "checks": checks}, status_code=200 if ok else 503)
