"""Test support: services run as production runs them (their own ``tablium-<name> serve`` process),
and the wallet's internal API as a test's ledger.

Every service's tests and the cross-service tests start real processes the same way: a free port,
the service's own process group (so a SIGKILL reaches the server and its workers, and nothing
outlives the test), its log in a file that a failing start prints the end of.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from jwt.algorithms import RSAAlgorithm

from tablium_kit.auth import ServiceTokens

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ServiceProcess:
    """A running ``tablium-<name> serve`` in its own process group."""

    def __init__(self, name: str, process: subprocess.Popen[bytes], url: str, log: Path) -> None:
        self.name = name
        self.process = process
        self.url = url
        self.log = log

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://", 1)

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def signal(self, signum: int) -> None:
        """``signum`` to the whole group: the server and its workers (SIGSTOP pauses the instance whole)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signum)

    def kill(self) -> None:
        """SIGKILL the whole group (killing only the parent would leave a worker serving)."""
        self.signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self, timeout_s: float = 10) -> None:
        """SIGTERM (a clean shutdown), then SIGKILL whatever is left of the group."""
        self.signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=timeout_s)
        self.signal(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=timeout_s)

    def wait_ready(self, path: str = "/health", timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.url}{path}", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} not ready at {self.url}{path} after {timeout_s} s:\n{self.log_tail()}")


def start_service(
    name: str,
    env: Mapping[str, str],
    *,
    port: int | None = None,
    log_dir: Path | None = None,
    ready_path: str = "/health",
    timeout_s: float = 120,  # a start migrates its database: slow on a loaded machine
) -> ServiceProcess:
    """``tablium-<name> serve`` on ``port`` (a free one by default) with ``env`` over this process's
    environment, started and ready (``ready_path`` answers 200) or raising with the end of its log."""
    port = port or free_port()
    log = (log_dir or Path(tempfile.gettempdir())) / f"tablium-{name}-test-{port}.log"
    process = subprocess.Popen(  # noqa: S603 - our own service's entry point
        [str(BIN / f"tablium-{name}"), "serve", "--port", str(port)],
        env={**os.environ, f"TABLIUM_{name.upper()}_PORT": str(port), **env},
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: signalled whole, workers included
    )
    service = ServiceProcess(name, process, f"http://127.0.0.1:{port}", log)
    try:
        service.wait_ready(ready_path, timeout_s)
    except BaseException:
        service.stop(timeout_s=2)
        raise
    return service


@contextlib.contextmanager
def serve_jwks(kid: str, public_key: RSAPublicKey) -> Iterator[str]:
    """A JWKS document of ``public_key`` served on a free port, as the player service publishes its keys;
    yields the document's URL (a service under test fetches its verification keys there)."""
    jwk = json.loads(RSAAlgorithm.to_jwk(public_key))
    document = json.dumps({"keys": [{**jwk, "kid": kid, "use": "sig", "alg": "RS256"}]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(document)))
            self.end_headers()
            self.wfile.write(document)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/jwks"
    finally:
        server.shutdown()
        server.server_close()


def wallet_env(database_url: str, exchange: str, **overrides: str) -> dict[str, str]:
    """A test wallet: its own database, the run's exchange, no consumers on the shared broker's queues."""
    return {
        "TABLIUM_WALLET_DATABASE_URL": database_url,
        "TABLIUM_EVENTS_EXCHANGE": exchange,
        "TABLIUM_ENVIRONMENT": "test",
        "TABLIUM_WALLET_CONSUME_EVENTS": "false",
        "TABLIUM_LOG_LEVEL": "WARNING",
        **{f"TABLIUM_WALLET_{key.upper()}": value for key, value in overrides.items()},
    }


class WalletLedger:
    """A test's direct line to the wallet's internal API, speaking as the service ``caller``
    (development keys, which test wallets trust): open accounts, fund players, read balances."""

    def __init__(self, url: str, caller: str, *, asset: str = "USDT") -> None:
        self.http = httpx.AsyncClient(base_url=url, timeout=10)
        self.tokens = ServiceTokens.development(caller)
        self.asset = asset

    async def aclose(self) -> None:
        await self.http.aclose()

    def headers(self) -> dict[str, str]:
        """A fresh token (they live 120 s) and a fresh Idempotency-Key."""
        return {"Authorization": f"Bearer {self.tokens.token('wallet')}", "Idempotency-Key": uuid.uuid4().hex}

    async def account(self, owner: str, kind: str) -> str:
        body = {"owner": owner, "kind": kind, "asset": self.asset}
        response = await self.http.put("/internal/v1/accounts", json=body, headers=self.headers())
        assert response.status_code == 200, response.text
        account_id: str = response.json()["id"]
        return account_id

    async def _balances(self, account_id: str) -> dict[str, str]:
        response = await self.http.get(f"/internal/v1/accounts/{account_id}", headers=self.headers())
        assert response.status_code == 200, response.text
        balances: dict[str, str] = response.json()["balance"]
        return balances

    async def balance(self, account_id: str) -> int:
        """Posted balance: what the account holds, holds on it included."""
        return int((await self._balances(account_id))["balance"])

    async def available(self, account_id: str) -> int:
        """What the account can spend: its balance less pending holds."""
        return int((await self._balances(account_id))["available"])

    async def player_balance(self, player: str) -> int:
        return await self.balance(await self.account(f"player:{player}", "player"))

    async def fund(self, player: str, amount: int) -> str:
        """``amount`` from the house into the player's account; the account's id."""
        house = await self.account("house", "house_adjustments")
        account = await self.account(f"player:{player}", "player")
        body = {
            "id": str(uuid.uuid4()),
            "debit_account_id": house,
            "credit_account_id": account,
            "amount": str(amount),
            "asset": self.asset,
            "code": "test_funding",
        }
        response = await self.http.post("/internal/v1/transfers", json=body, headers=self.headers())
        assert response.status_code in (200, 201), response.text
        return account


class Platform:
    """Services as processes on a RabbitMQ vhost of their own (see :func:`running_platform`)."""

    def __init__(self, env: dict[str, str], ports: dict[str, int], amqp_url: str, log_dir: Path) -> None:
        self.env = env
        self.ports = ports
        self.urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
        self.amqp_url = amqp_url
        self.log_dir = log_dir
        self.running: dict[str, ServiceProcess] = {}
        self.admin = ""

    def start(self, name: str) -> ServiceProcess:
        """Start (or start again, after a kill) ``name`` on its port; ready when ``/ready`` answers 200."""
        self.running[name] = start_service(
            name, self.env, port=self.ports[name], log_dir=self.log_dir, ready_path="/ready", timeout_s=240
        )
        return self.running[name]

    def ws_url(self, name: str) -> str:
        return self.urls[name].replace("http://", "ws://", 1)

    def run(self, name: str, *args: str) -> str:
        """``tablium-<name> ARGS`` with the platform's environment (a CLI command); its standard output."""
        done = subprocess.run(  # noqa: S603 - our own service's entry point
            [str(BIN / f"tablium-{name}"), *args], env={**os.environ, **self.env}, capture_output=True, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"tablium-{name} {' '.join(args)}: {done.stderr.decode(errors='replace')[-2000:]}")
        return done.stdout.decode()

    def stop(self) -> None:
        for service in self.running.values():
            service.stop()


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True)  # noqa: S603, S607 - the broker CLI


ADMIN_PASSWORD = "correct horse battery"


@contextlib.asynccontextmanager
async def running_platform(
    names: Sequence[str],
    *,
    vhost: str,
    databases: Callable[[str], Awaitable[str]],
    log_dir: Path,
    env: Mapping[str, str] | None = None,
) -> AsyncIterator[Platform]:
    """The services ``names`` as processes (started in that order), wired to one another, on the RabbitMQ
    vhost ``vhost`` (made here with every consumer's queues, as the deploy step declares them, and deleted
    after): each consumes its usual queues, which on the shared vhost are the running platform's. Each gets
    a database from ``databases(name)`` (the ``make_database`` fixture). With the player service, an admin
    account is made (:attr:`Platform.admin`, password :data:`ADMIN_PASSWORD`). ``env`` overrides settings.
    """
    # Imported here: the messaging stack is not needed by the rest of this module's users.
    from tablium_kit.messaging import declare_topology

    await asyncio.to_thread(_rabbitmqctl, "add_vhost", vhost)
    try:
        await asyncio.to_thread(_rabbitmqctl, "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        amqp_url = f"amqp://guest:guest@127.0.0.1:5672/{vhost}"
        # Without a route the relay parks an event for a service not running here (lobby.table_opened for
        # the event service) and holds back its subject's later ones behind it.
        await declare_topology(amqp_url, "tablium.events")
        ports = {name: free_port() for name in names}
        urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
        settings = {
            "TABLIUM_ENVIRONMENT": "test",
            "TABLIUM_LOG_JSON": "true",
            "TABLIUM_LOG_LEVEL": "WARNING",
            "TABLIUM_AMQP_URL": amqp_url,
            "TABLIUM_REDIS_NAMESPACE": f"test-{vhost}",
            "TABLIUM_PLAYER_ARGON2_MEMORY_KIB": "1024",
            "TABLIUM_PLAYER_ARGON2_TIME_COST": "1",
            "TABLIUM_LOBBY_BETWEEN_HANDS_S": "0.05",
            "TABLIUM_LOBBY_RECONCILE_GRACE_S": "0.5",
            "TABLIUM_LOBBY_RECONCILE_INTERVAL_S": "0.5",
        }
        if "player" in urls:
            settings["TABLIUM_JWKS_URL"] = f"{urls['player']}/api/v1/auth/jwks"
        if "wallet" in urls:
            settings["TABLIUM_LOBBY_WALLET_URL"] = urls["wallet"]
            settings["TABLIUM_EVENT_WALLET_URL"] = urls["wallet"]
        for name in names:
            settings[f"TABLIUM_{name.upper()}_DATABASE_URL"] = await databases(f"e2e_{name}")
        platform = Platform({**settings, **(env or {})}, ports, amqp_url, log_dir)
        try:
            for name in names:
                await asyncio.to_thread(platform.start, name)
            if "player" in names:
                platform.admin = f"admin{uuid.uuid4().hex[:8]}"
                account = ["--username", platform.admin, "--email", f"{platform.admin}@example.com"]
                await asyncio.to_thread(
                    platform.run, "player", "create-account", *account, "--password", ADMIN_PASSWORD, "--role", "admin"
                )
            yield platform
        finally:
            await asyncio.to_thread(platform.stop)
    finally:
        await asyncio.to_thread(_rabbitmqctl, "delete_vhost", vhost)
