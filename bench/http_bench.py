"""HTTP benchmark: what the service kit and the gateway cost, measured against bare Litestar.

Runs, each under granian (one worker, uvloop) and loaded by ``wrk -t2 -c64``:

1. bare Litestar ``GET /ping`` (the baseline), and bare Litestar with the player's ``/auth/session`` handler
   shape (a controller method returning a Struct), to tell Litestar's cost for that shape from the kit's;
2. the same handler inside the kit, with a verified RS256 token (``GET /ping``, Bearer);
3. the player service's authenticated ``GET /api/v1/auth/session`` (answered from the token), directly
   and through the development gateway (route match, JWT plugin, rate limit off, proxy);
4. the player's ``GET /api/v1/players/me`` (token + a database read), directly and through the gateway.

Prints requests/s and p50/p99 latency per run, and the kit's throughput relative to bare.
Usage: ``.venv/bin/python bench/http_bench.py [--seconds 8] [--rounds 3]``
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from tablium_kit import db

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PG = "postgresql+asyncpg://postgres@127.0.0.1:5432"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_ready(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"bench: {url} exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"bench: {url} not ready")


def wrk(url: str, token: str | None, seconds: int) -> tuple[float, float, float]:
    """(requests/s, p50 ms, p99 ms) from wrk --latency."""
    headers = ["-H", f"Authorization: Bearer {token}"] if token else []
    subprocess.run(["wrk", "-t2", "-c64", "-d2s", *headers, url], check=True, capture_output=True)  # warm-up
    out = subprocess.run(
        ["wrk", "-t2", "-c64", f"-d{seconds}s", "--latency", *headers, url], check=True, capture_output=True, text=True
    ).stdout
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non_2xx:
        raise SystemExit(f"bench: {url} answered {non_2xx.group(1)} errors:\n{out}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]

    def percentile(p: str) -> float:
        value, unit = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    return rps, percentile("50"), percentile("99")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; medians are reported")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("bench: wrk is needed (Debian: apt-get install wrk)")

    run = os.getpid()
    player_db, kit_db = f"{PG}/bench_{run}_player", f"{PG}/bench_{run}_kit"
    for url in (player_db, kit_db):
        asyncio.run(db.ensure_database(url))
    logs = Path(tempfile.mkdtemp(prefix="tablium-bench-"))
    env = {
        **os.environ,
        "TABLIUM_ENVIRONMENT": "test",
        "TABLIUM_LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT / "bench"),
        "BENCH_DATABASE_URL": kit_db,
        "TABLIUM_PLAYER_DATABASE_URL": player_db,
    }
    ports = {name: free_port() for name in ("bare", "kit", "player", "gateway")}
    children: list[subprocess.Popen[bytes]] = []

    def start(name: str, argv: list[str], ready: str) -> None:
        process = subprocess.Popen(argv, env=env, stdout=(logs / f"{name}.log").open("wb"), stderr=subprocess.STDOUT)
        children.append(process)
        wait_ready(ready, process)

    def granian(target: str, port: int) -> list[str]:
        return [str(BIN / "granian"), "--interface", "asgi", "--loop", "uvloop", "--factory", "--workers", "1",
                "--host", "127.0.0.1", "--port", str(port), "--no-ws", target]  # fmt: skip

    try:
        start("bare", granian("bench_apps:create_bare_app", ports["bare"]), f"http://127.0.0.1:{ports['bare']}/ping")
        start("kit", granian("bench_apps:create_kit_app", ports["kit"]), f"http://127.0.0.1:{ports['kit']}/ready")
        env["TABLIUM_PLAYER_PORT"] = str(ports["player"])
        start("player", [str(BIN / "tablium-player"), "serve"], f"http://127.0.0.1:{ports['player']}/ready")
        start(
            "gateway",
            [str(BIN / "tablium-gateway"), "--config", "gateway/kong.yml", "--port", str(ports["gateway"]),
             "--upstream", f"player=http://127.0.0.1:{ports['player']}", "--disable-plugin", "rate-limiting"],
            f"http://127.0.0.1:{ports['gateway']}/api/v1/auth/jwks",
        )  # fmt: skip
        player = f"http://127.0.0.1:{ports['player']}"
        gateway = f"http://127.0.0.1:{ports['gateway']}"
        user = {"username": f"bench{run}", "email": f"bench{run}@example.com", "password": "benchmark password"}
        httpx.post(f"{player}/api/v1/auth/register", json=user).raise_for_status()
        login = httpx.post(
            f"{player}/api/v1/auth/login", json={"login": user["username"], "password": user["password"]}
        )
        token = login.raise_for_status().json()["access_token"]

        bare = f"http://127.0.0.1:{ports['bare']}"
        runs = [
            ("bare Litestar GET /ping", f"{bare}/ping", None),
            ("bare Litestar, /auth/session's handler shape", f"{bare}/api/v1/auth/session", None),
            ("kit GET /ping (RS256 token)", f"http://127.0.0.1:{ports['kit']}/ping", token),
            ("player GET /auth/session, direct", f"{player}/api/v1/auth/session", token),
            ("player GET /auth/session, via gateway", f"{gateway}/api/v1/auth/session", token),
            ("player GET /players/me (db read), direct", f"{player}/api/v1/players/me", token),
            ("player GET /players/me (db read), via gateway", f"{gateway}/api/v1/players/me", token),
        ]
        # Rounds interleave every run, and each run is compared with bare in its own round: on a shared
        # machine the load drifts over minutes, and a ratio within one round cancels most of that drift.
        rounds = [[wrk(url, tok, args.seconds) for _, url, tok in runs] for _ in range(args.rounds)]
    finally:
        for child in children:
            child.terminate()
        for child in children:
            child.wait(timeout=10)
        for url in (player_db, kit_db):
            asyncio.run(db.drop_database(url))

    print(f"\nHTTP, granian 1 worker (uvloop), wrk -t2 -c64 -d{args.seconds}s, {os.cpu_count()} CPUs, "
          f"median of {args.rounds} interleaved rounds\n")  # fmt: skip
    print(f"| {'run':<46} | {'req/s':>9} | {'p50 ms':>7} | {'p99 ms':>7} | {'vs bare':>7} | {'rounds vs bare':>18} |")
    print(f"|{'-' * 48}|{'-' * 11}|{'-' * 9}|{'-' * 9}|{'-' * 9}|{'-' * 20}|")
    shares: list[float] = []
    for index, (name, _, _) in enumerate(runs):
        per_round = [results[index] for results in rounds]
        ratios = [results[index][0] / results[0][0] for results in rounds]
        rps, p50, p99 = (statistics.median(r[k] for r in per_round) for k in range(3))
        share = statistics.median(ratios)
        shares.append(share)
        spread = " ".join(f"{r:.0%}" for r in ratios)
        print(f"| {name:<46} | {rps:>9.0f} | {p50:>7.2f} | {p99:>7.2f} | {share:>6.0%} | {spread:>18} |")
    for label, index in (("kit /ping", 2), ("player /auth/session", 3)):
        verdict = "meets" if shares[index] >= 0.7 else "misses"
        print(f"{label}: {shares[index]:.1%} of bare throughput, median of the rounds "
              f"({verdict} the target: the kit costs at most 30%)")  # fmt: skip
    same_shape = statistics.median(results[3][0] / results[1][0] for results in rounds)
    print(f"player /auth/session against bare Litestar with the same handler shape: {same_shape:.1%} "
          "(the kit's cost there; the rest is Litestar's, for a controller method returning a Struct)")  # fmt: skip


if __name__ == "__main__":
    main()
