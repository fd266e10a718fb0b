"""The HTTP benchmark's platform (bench/http_bench.py): the services it reads from, each its own
``tablium-<name> serve`` process (granian, one worker) with its own database, the development gateway, the
baselines (bare Litestar, and bare Litestar with a raw asyncpg pool), and the rows the reads find."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import jwt
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from tablium_kit import db
from tablium_kit.auth import ServiceTokens

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PG = "postgresql+asyncpg://postgres@127.0.0.1:5432"
SERVICES = ("player", "wallet", "event", "lobby")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"bench: {url} exited with {process.returncode}:\n{log.read_text()[-2000:]}")
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"bench: {url} not ready:\n{log.read_text()[-2000:]}")


def granian(target: str, port: int) -> list[str]:
    return [str(BIN / "granian"), "--interface", "asgi", "--loop", "uvloop", "--factory", "--workers", "1",
            "--host", "127.0.0.1", "--port", str(port), "--no-ws", target]  # fmt: skip


@dataclass
class Platform:
    run: str = field(default_factory=lambda: f"{os.getpid()}")
    logs: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="tablium-bench-")))
    urls: dict[str, str] = field(default_factory=dict)
    children: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    databases: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)

    def database(self, name: str) -> str:
        url = f"{PG}/bench_{self.run}_{name}"
        asyncio.run(db.ensure_database(url))
        self.databases.append(url)
        return url

    def start(self, name: str, argv: list[str], ready_path: str, port: int) -> str:
        log = self.logs / f"{name}.log"
        process = subprocess.Popen(argv, env=self.env, cwd=ROOT, stdout=log.open("wb"), stderr=subprocess.STDOUT)
        self.children[name] = process
        url = f"http://127.0.0.1:{port}"
        wait_ready(url + ready_path, process, log)
        self.urls[name] = url
        return url

    def start_all(self) -> None:
        ports = {name: free_port() for name in (*SERVICES, "bare", "bare_db", "kit", "gateway", "gateway1")}
        self.env = {
            **os.environ,
            "TABLIUM_ENVIRONMENT": "test",
            "TABLIUM_LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(ROOT / "bench"),
            "BENCH_DATABASE_URL": self.database("kit"),
            "TABLIUM_EVENTS_EXCHANGE": f"bench-{self.run}",
            "TABLIUM_REDIS_NAMESPACE": f"bench-{self.run}",
            "TABLIUM_CONSUME_EVENTS": "false",
            "TABLIUM_JWKS_URL": f"http://127.0.0.1:{ports['player']}/api/v1/auth/jwks",
            "TABLIUM_PLAYER_ARGON2_MEMORY_KIB": "1024",
            "TABLIUM_PLAYER_ARGON2_TIME_COST": "1",
            # Postgres is shared (max_connections 100): small pools, the same size for the kit's reader
            # and the asyncpg baseline.
            "TABLIUM_DB_POOL_SIZE": os.environ.get("TABLIUM_DB_POOL_SIZE", "4"),
            "TABLIUM_DB_READ_POOL_SIZE": os.environ.get("TABLIUM_DB_READ_POOL_SIZE", "4"),
            **{f"TABLIUM_{name.upper()}_URL": f"http://127.0.0.1:{ports[name]}" for name in SERVICES},
            **{f"TABLIUM_{name.upper()}_PORT": str(ports[name]) for name in SERVICES},
            **{f"TABLIUM_{name.upper()}_DATABASE_URL": self.database(name) for name in SERVICES},
        }
        self.env["BENCH_BARE_POOL_SIZE"] = self.env["TABLIUM_DB_READ_POOL_SIZE"]
        self.env["BENCH_BARE_DSN"] = self.env["TABLIUM_PLAYER_DATABASE_URL"].replace("+asyncpg", "")
        self.start("bare", granian("bench_apps:create_bare_app", ports["bare"]), "/ping", ports["bare"])
        self.start("kit", granian("bench_apps:create_kit_app", ports["kit"]), "/ready", ports["kit"])
        for name in SERVICES:
            self.start(name, [str(BIN / f"tablium-{name}"), "serve"], "/ready", ports[name])
        upstreams = [arg for name in SERVICES for arg in ("--upstream", f"{name}={self.urls[name]}")]
        # The gateway with two worker processes, and with one for comparison (its CPU is the proxy's own
        # work, which a second process spreads over the machine's two cores; rate limits are then per process).
        for name, workers in (("gateway", "2"), ("gateway1", "1")):
            self.start(
                name,
                [str(BIN / "tablium-gateway"), "--config", "gateway/kong.yml", "--port", str(ports[name]),
                 "--workers", workers, *upstreams, "--disable-plugin", "rate-limiting"],
                "/api/v1/auth/jwks",
                ports[name],
            )  # fmt: skip
        # After the player migrated its database: the baseline reads the same table.
        self.start("bare_db", granian("bench_apps:create_bare_db_app", ports["bare_db"]), "/ping", ports["bare_db"])

    def stop(self) -> None:
        for child in self.children.values():
            child.terminate()
        for child in self.children.values():
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
        for url in self.databases:
            asyncio.run(db.drop_database(url))


@dataclass
class Seed:
    token: str  # a registered player's access token, from the player service
    player_id: str
    tournament_id: str
    table_ids: list[str]  # the lobby's open tables (the WebSocket rows watch them)


def _director_token(player_url: str) -> str:
    """A director's token signed with the development key the player service publishes (test environment)."""
    from tablium_player.domain.tokens import key_id

    private = load_pem_private_key((ROOT / "services/player/dev-keys/jwt-dev-private.pem").read_bytes(), None)
    now = int(time.time())
    roles = ["player", "tournament_director", "admin"]
    claims = {"iss": "tablium-player", "aud": "tablium", "sub": str(uuid.uuid4()), "iat": now, "exp": now + 7200,
              "typ": "access", "roles": roles, "jti": uuid.uuid4().hex}  # fmt: skip
    kid = key_id(private.public_key())  # type: ignore[arg-type]
    return jwt.encode(claims, private, algorithm="RS256", headers={"kid": kid})  # type: ignore[arg-type]


def seed(platform: Platform) -> Seed:
    """A player with accounts in two assets, a tournament open for registration, and open cash tables."""
    urls, run = platform.urls, platform.run
    user = {"username": f"bench{run}", "email": f"bench{run}@example.com", "password": "benchmark password"}
    httpx.post(f"{urls['player']}/api/v1/auth/register", json=user).raise_for_status()
    login = httpx.post(f"{urls['player']}/api/v1/auth/login", json={"login": user["username"],
                                                                     "password": user["password"]})  # fmt: skip
    token = login.raise_for_status().json()["access_token"]
    me = httpx.get(f"{urls['player']}/api/v1/players/me", headers={"Authorization": f"Bearer {token}"})
    player_id = me.raise_for_status().json()["id"]

    service = ServiceTokens.development("lobby")
    for asset in ("USDT", "ETH"):
        headers = {"Authorization": f"Bearer {service.token('wallet')}", "Idempotency-Key": uuid.uuid4().hex}
        body = {"owner": f"player:{player_id}", "kind": "player", "asset": asset}
        httpx.put(f"{urls['wallet']}/internal/v1/accounts", json=body, headers=headers).raise_for_status()

    director = {"Authorization": f"Bearer {_director_token(urls['player'])}"}
    created = httpx.post(f"{urls['event']}/api/v1/tournaments", json={"name": "bench"}, headers=director, timeout=30)
    tournament_id = created.raise_for_status().json()["id"]
    httpx.post(f"{urls['event']}/api/v1/tournaments/{tournament_id}/open", headers=director).raise_for_status()

    table_ids = []
    for i in range(10):
        body = {"name": f"bench {i}", "small_blind": "1", "big_blind": "2", "seats": 6}
        table = httpx.post(f"{urls['lobby']}/api/v1/tables", json=body, headers=director, timeout=30)
        table_ids.append(table.raise_for_status().json()["id"])
    return Seed(token=token, player_id=player_id, tournament_id=tournament_id, table_ids=table_ids)
