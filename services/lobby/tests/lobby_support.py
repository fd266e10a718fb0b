"""The lobby against the REAL wallet (a separate process with its own database), real Postgres, Redis and
RabbitMQ (the run's own exchange). Lobby processes for over-the-wire tests verify tokens through a small
JWKS server of the test's signing key."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from jwt.algorithms import RSAAlgorithm
from litestar.testing import AsyncTestClient
from tablium_lobby.app import create_app
from tablium_lobby.settings import LobbySettings

from tablium_kit.auth import ServiceTokens, StaticKeySource
from tablium_kit.messaging.testing import AmqpNames

VENV_BIN = Path(__file__).resolve().parents[3] / ".venv" / "bin"
KID = "lobby-test-key"
# The player service's development key: the gateway's kong.yml trusts it too, so tests can go through it.
DEV_KEYS = Path(__file__).resolve().parents[3] / "services" / "player" / "dev-keys"
SIGNING_KEY = load_pem_private_key((DEV_KEYS / "jwt-dev-private.pem").read_bytes(), password=None)
assert isinstance(SIGNING_KEY, rsa.RSAPrivateKey)


def user_token(subject: str, roles: list[str] | None = None) -> str:
    now = int(time.time())
    claims = {
        "iss": "tablium-player",
        "aud": "tablium",
        "sub": subject,
        "iat": now,
        "exp": now + 3600,
        "typ": "access",
        "roles": roles or ["player"],
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, SIGNING_KEY, algorithm="RS256", headers={"kid": KID})


def bearer(subject: str, roles: list[str] | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {user_token(subject, roles)}"}


ADMIN = bearer(str(uuid.uuid4()), ["player", "admin"])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_healthy(process: subprocess.Popen[bytes], url: str, name: str) -> None:
    for _ in range(300):
        if process.poll() is not None:
            err = process.stderr.read().decode()[-3000:] if process.stderr else ""  # type: ignore[union-attr]
            raise RuntimeError(f"{name} exited: {err}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{name} did not start")


@pytest.fixture(scope="session")
def jwks_url() -> Iterator[str]:
    """A JWKS document of the test signing key, as the player service publishes its keys."""
    jwk = json.loads(RSAAlgorithm.to_jwk(SIGNING_KEY.public_key()))
    body = json.dumps({"keys": [{**jwk, "kid": KID, "use": "sig", "alg": "RS256"}]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/jwks"
    server.shutdown()


@pytest.fixture(scope="session")
async def wallet_url(make_database: Callable[[str], Awaitable[str]], amqp_names: AmqpNames) -> AsyncIterator[str]:
    port = free_port()
    env = {
        **os.environ,
        "TABLIUM_WALLET_DATABASE_URL": await make_database("wallet"),
        "TABLIUM_WALLET_PORT": str(port),
        "TABLIUM_EVENTS_EXCHANGE": amqp_names.exchange,
        "TABLIUM_ENVIRONMENT": "test",
        "TABLIUM_WALLET_CONSUME_EVENTS": "false",
        "TABLIUM_LOG_LEVEL": "WARNING",
    }
    process = subprocess.Popen(  # noqa: ASYNC220 - started once per session
        [str(VENV_BIN / "tablium-wallet"), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(process, url, "wallet")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def lobby_env(database_url: str, amqp_names: AmqpNames, wallet_url: str, run_id: str, **extra: str) -> dict[str, str]:
    return {
        "TABLIUM_LOBBY_DATABASE_URL": database_url,
        "TABLIUM_EVENTS_EXCHANGE": amqp_names.exchange,
        "TABLIUM_ENVIRONMENT": "test",
        "TABLIUM_LOBBY_WALLET_URL": wallet_url,
        # Every Redis key this run writes starts with its own namespace.
        "TABLIUM_LOBBY_REDIS_NAMESPACE": f"test-{run_id}",
        "TABLIUM_LOBBY_RECONCILE_GRACE_S": "0.5",
        "TABLIUM_LOBBY_RECONCILE_INTERVAL_S": "0.5",
        "TABLIUM_LOBBY_BETWEEN_HANDS_S": "0.05",
        **{f"TABLIUM_LOBBY_{k.upper()}": v for k, v in extra.items()},
    }


@pytest.fixture(scope="module")
async def settings(
    make_database: Callable[[str], Awaitable[str]], amqp_names: AmqpNames, wallet_url: str, run_id: str
) -> LobbySettings:
    return LobbySettings.from_env("lobby", lobby_env(await make_database("lobby"), amqp_names, wallet_url, run_id))


@pytest.fixture(scope="module")
async def client(settings: LobbySettings) -> AsyncIterator[AsyncTestClient]:
    app = create_app(settings, key_source=StaticKeySource({KID: SIGNING_KEY.public_key()}))
    async with AsyncTestClient(app=app) as test_client:
        yield test_client


class LobbyProcess:
    def __init__(self, process: subprocess.Popen[bytes], url: str, database_url: str) -> None:
        self.process = process
        self.url = url
        self.database_url = database_url

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://")

    def kill(self) -> None:
        """SIGKILL the whole process group: the server and its worker (killing only the parent would leave
        the worker serving, and the instance alive)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)


@pytest.fixture(scope="module")
async def start_lobby(
    make_database: Callable[[str], Awaitable[str]],
    amqp_names: AmqpNames,
    wallet_url: str,
    run_id: str,
    jwks_url: str,
) -> AsyncIterator[Callable[..., Awaitable[LobbyProcess]]]:
    """Factory of real ``tablium-lobby serve`` processes; several share one database when asked."""
    processes: list[subprocess.Popen[bytes]] = []
    logs: list[Path] = []

    async def start(database_url: str | None = None, **extra: str) -> LobbyProcess:
        port = free_port()
        database_url = database_url or await make_database("lobby_proc")
        env = {
            **os.environ,
            **lobby_env(database_url, amqp_names, wallet_url, run_id, **extra),
            "TABLIUM_LOBBY_PORT": str(port),
            "TABLIUM_LOBBY_JWKS_URL": jwks_url,
            "TABLIUM_LOG_LEVEL": "WARNING",
        }
        log_path = Path(tempfile.gettempdir()) / f"tablium-lobby-test-{port}.log"
        process = subprocess.Popen(  # noqa: ASYNC220 - a test starting its service
            [str(VENV_BIN / "tablium-lobby"), "serve", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log_path.open("wb"),
            start_new_session=True,  # its own process group: stopped whole, workers included
        )
        logs.append(log_path)
        processes.append(process)
        url = f"http://127.0.0.1:{port}"
        wait_healthy(process, url, "lobby")
        return LobbyProcess(process, url, database_url)

    yield start
    for process in processes:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
    if not os.environ.get("TABLIUM_TEST_KEEP_LOGS"):
        for log_path in logs:
            log_path.unlink(missing_ok=True)


class Ledger:
    """Direct calls to the wallet's internal API: fund players, read balances."""

    def __init__(self, url: str) -> None:
        self.http = httpx.AsyncClient(base_url=url, timeout=10)
        self.tokens = ServiceTokens.development("lobby")

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens.token('wallet')}", "Idempotency-Key": uuid.uuid4().hex}

    async def account(self, owner: str, kind: str) -> str:
        response = await self.http.put(
            "/internal/v1/accounts", json={"owner": owner, "kind": kind, "asset": "USDT"}, headers=self.headers()
        )
        assert response.status_code == 200, response.text
        account_id: str = response.json()["id"]
        return account_id

    async def balance(self, account_id: str) -> int:
        response = await self.http.get(f"/internal/v1/accounts/{account_id}", headers=self.headers())
        assert response.status_code == 200, response.text
        return int(response.json()["balance"]["balance"])

    async def player_balance(self, player: str) -> int:
        return await self.balance(await self.account(f"player:{player}", "player"))

    async def fund(self, player: str, amount: int) -> str:
        house = await self.account("house", "house_adjustments")
        account = await self.account(f"player:{player}", "player")
        body = {
            "id": str(uuid.uuid4()),
            "debit_account_id": house,
            "credit_account_id": account,
            "amount": str(amount),
            "asset": "USDT",
            "code": "test_funding",
        }
        response = await self.http.post("/internal/v1/transfers", json=body, headers=self.headers())
        assert response.status_code in (200, 201), response.text
        return account


@pytest.fixture
async def ledger(wallet_url: str) -> AsyncIterator[Ledger]:
    ledger = Ledger(wallet_url)
    yield ledger
    await ledger.http.aclose()


async def new_table(client: Any, **config: Any) -> dict[str, Any]:
    body = {"name": "Test table", "small_blind": "1", "big_blind": "2", "seats": 6, **config}
    response = await client.post("/api/v1/tables", json=body, headers=ADMIN)
    assert response.status_code == 201, response.text
    table: dict[str, Any] = response.json()
    return table
