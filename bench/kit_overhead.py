"""The kit's cost per request on routes without a database, in process: each app's ASGI callable driven in a loop.

Compares bare Litestar ``GET /ping`` and the player's ``/auth/session`` handler shape (bench_apps), the kit's
authenticated ``GET /ping`` and the player service's own ``GET /api/v1/auth/session`` (built by its
``create_app``, no lifespan: the route reads only the verified token). Rounds are interleaved; each prints the
CPU time per request (best and median of the rounds), the ratio to bare, and optionally a profile of one app.

Usage: ``.venv/bin/python bench/kit_overhead.py [--requests 3000] [--rounds 15] [--profile player|kit]
[--pyinstrument]``. No server, no sockets: what is left is the Python each request runs.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.serialization import load_pem_private_key

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("TABLIUM_ENVIRONMENT", "test")
os.environ.setdefault("TABLIUM_LOG_LEVEL", "WARNING")
os.environ.setdefault("BENCH_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/bench_unused")
os.environ.setdefault("TABLIUM_PLAYER_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/bench_unused")
os.environ.setdefault("TABLIUM_CONSUME_EVENTS", "false")

App = Callable[..., Any]


def access_token() -> str:
    from tablium_player.domain.tokens import key_id

    private = load_pem_private_key((ROOT / "services/player/dev-keys/jwt-dev-private.pem").read_bytes(), None)
    now = int(time.time())
    claims = {"iss": "tablium-player", "aud": "tablium", "sub": str(uuid.uuid4()), "iat": now, "exp": now + 7200,
              "typ": "access", "roles": ["player"], "jti": uuid.uuid4().hex}  # fmt: skip
    return jwt.encode(claims, private, algorithm="RS256", headers={"kid": key_id(private.public_key())})  # type: ignore[arg-type]


def scope_of(path: str, token: str | None) -> dict[str, Any]:
    # What granian hands an ASGI app for wrk's request (its headers, in its order).
    headers = [(b"host", b"127.0.0.1:8000")]
    if token:
        headers.append((b"authorization", f"Bearer {token}".encode()))
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 40000),
        "scheme": "http",
        "method": "GET",
        "root_path": "",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": headers,
    }


async def drive(app: App, template: dict[str, Any], count: int) -> float:
    """CPU seconds per request over ``count`` requests."""
    sent: list[int] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            sent.append(message["status"])

    start = time.process_time()
    for _ in range(count):
        scope = dict(template)
        scope["headers"] = list(template["headers"])
        await app(scope, receive, send)
    elapsed = time.process_time() - start
    bad = [s for s in sent if s != 200]
    if bad:
        raise SystemExit(f"non-200 answers: {bad[:5]}")
    return elapsed / count


def apps(token: str) -> dict[str, tuple[App, dict[str, Any]]]:
    import bench_apps

    from tablium_player.app import create_app

    return {
        "bare /ping": (bench_apps.create_bare_app(), scope_of("/ping", None)),
        "bare /auth/session shape": (bench_apps.create_bare_app(), scope_of("/api/v1/auth/session", None)),
        "kit /ping": (bench_apps.create_kit_app(), scope_of("/ping", token)),
        "player /auth/session": (create_app(), scope_of("/api/v1/auth/session", token)),
    }


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--only", default="", help="the apps whose name contains this (and bare /ping)")
    parser.add_argument("--profile", default="", help="profile the app whose name contains this instead")
    parser.add_argument("--pyinstrument", action="store_true", help="profile with pyinstrument, not cProfile")
    args = parser.parse_args()
    token = access_token()
    built = apps(token)
    if args.only:
        built = {name: app for name, app in built.items() if args.only in name or name == "bare /ping"}
    for app, scope in built.values():  # warm: caches, first-request work
        await drive(app, scope, 200)
    if args.profile:
        name = next(n for n in built if args.profile in n)
        app, scope = built[name]
        if args.pyinstrument:
            from pyinstrument import Profiler

            profiler = Profiler(interval=0.0001, async_mode="disabled")
            profiler.start()
            await drive(app, scope, args.requests * 5)
            profiler.stop()
            print(profiler.output_text(unicode=True, color=False, show_all=False))
        else:
            cprofile = cProfile.Profile()
            cprofile.enable()
            await drive(app, scope, args.requests)
            cprofile.disable()
            stats = pstats.Stats(cprofile)
            print(f"{name}: {stats.total_calls / args.requests:.0f} Python calls per request")  # type: ignore[attr-defined]
            stats.sort_stats("tottime").print_stats(30)
        return
    times: dict[str, list[float]] = {name: [] for name in built}
    for _ in range(args.rounds):
        for name, (app, scope) in built.items():
            times[name].append(await drive(app, scope, args.requests))
    bare = min(times["bare /ping"])
    load = os.getloadavg()[0]
    print(f"load {load:.2f}; {args.rounds} interleaved rounds of {args.requests} requests; CPU µs/request")
    print(f"| {'app':<26} | {'best':>6} | {'median':>6} | {'best / bare':>11} | {'req/s share if CPU-bound':>24} |")
    print(f"|{'-' * 28}|{'-' * 8}|{'-' * 8}|{'-' * 13}|{'-' * 26}|")
    for name, values in times.items():
        best, median = min(values) * 1e6, statistics.median(values) * 1e6
        print(f"| {name:<26} | {best:>6.1f} | {median:>6.1f} | {best / (bare * 1e6):>11.2f} |"
              f" {bare * 1e6 / best:>24.0%} |")  # fmt: skip


if __name__ == "__main__":
    import uvloop

    uvloop.run(main())
