"""Cross-service tests: real processes (services under granian, the dev gateway) over real HTTP."""

from __future__ import annotations

import functools
import importlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tablium_kit.auth import ServiceTokens, local_service_keys
from tablium_kit.localchain import LocalChain
from tablium_kit.messaging.testing import AmqpNames
from tablium_kit.service_processes import free_port
from tablium_kit.settings import ServiceSettings
from tablium_kit.testing import RUN_ID

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def wait_until_ready(url: str, process: subprocess.Popen[bytes], log: Path, timeout_s: float = 180) -> None:
    # Generous: on a loaded 2-core machine importing web3 alone (the blockchain service) takes tens of seconds.
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: process exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} not ready after {timeout_s} s:\n{log.read_text()[-3000:]}")


class Processes:
    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.children: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, argv: list[str], env: dict[str, str], ready_url: str, timeout_s: float = 180) -> None:
        log = self.logs / f"{name}.log"
        process = subprocess.Popen(argv, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, cwd=ROOT)
        self.children.append(process)
        wait_until_ready(ready_url, process, log, timeout_s)

    def stop(self) -> None:
        for child in self.children:
            child.terminate()
        for child in self.children:
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()


@pytest.fixture(scope="session")
async def platform(
    tmp_path_factory: pytest.TempPathFactory,
    make_database: Callable[[str], Awaitable[str]],
    amqp_names: AmqpNames,
) -> AsyncIterator[dict[str, str]]:
    """The player service and the dev gateway in front of it, as separate processes on free ports."""
    player_port, gateway_port = free_port(), free_port()
    env = {
        **os.environ,
        "TABLIUM_ENVIRONMENT": "test",
        "TABLIUM_LOG_JSON": "true",
        "TABLIUM_EVENTS_EXCHANGE": amqp_names.exchange,
        "TABLIUM_REDIS_NAMESPACE": f"test-{RUN_ID}",
        "TABLIUM_PLAYER_DATABASE_URL": await make_database("e2e_player"),
        "TABLIUM_PLAYER_PORT": str(player_port),
        "TABLIUM_PLAYER_ARGON2_MEMORY_KIB": "1024",
        "TABLIUM_PLAYER_LOGIN_ATTEMPTS_PER_IP": "8",
        # Every test here registers from 127.0.0.1.
        "TABLIUM_PLAYER_REGISTRATIONS_PER_IP": "1000",
        # The shared broker's service queues belong to whoever runs the platform (as for live_services).
        "TABLIUM_PLAYER_CONSUME_EVENTS": "false",
        # The gateway below connects from loopback; services believe no one's X-Forwarded-For by default.
        "TABLIUM_TRUSTED_PROXIES": '["127.0.0.1"]',
    }
    processes = Processes(tmp_path_factory.mktemp("logs"))
    try:
        processes.start("player", [str(BIN / "tablium-player"), "serve"], env, f"http://127.0.0.1:{player_port}/ready")
        processes.start(
            "gateway",
            [
                str(BIN / "tablium-gateway"),
                "--config",
                "gateway/kong.yml",
                "--port",
                str(gateway_port),
                "--upstream",
                f"player=http://127.0.0.1:{player_port}",
            ],
            env,
            f"http://127.0.0.1:{gateway_port}/api/v1/auth/jwks",
        )
        yield {"gateway": f"http://127.0.0.1:{gateway_port}", "player": f"http://127.0.0.1:{player_port}"}
    finally:
        processes.stop()


# Every service of the repository: a new one (lobby, club, ...) is picked up by the gate when it exists.
SERVICES = sorted(path.parent.name for path in (ROOT / "services").glob("*/pyproject.toml"))


@functools.cache
def openapi_document(service: str) -> dict[str, Any]:
    """The service's OpenAPI document, built in process (the live one is the same; the gate checks it)."""
    document: dict[str, Any] = importlib.import_module(f"tablium_{service}.app").create_app().openapi_schema.to_schema()
    return document


def _internal_callers() -> set[str]:
    """The services the internal routes name, whether they exist yet or not (the event's hands: the lobby)."""
    return {
        name
        for service in SERVICES
        for item in openapi_document(service)["paths"].values()
        for operation in item.values()
        if isinstance(operation, dict)
        for requirement in operation.get("security", [])
        for name in requirement.get("ServiceToken", [])
    }


@dataclass(frozen=True)
class LiveServices:
    urls: dict[str, str]  # service name -> base URL
    env: dict[str, str]  # the environment they run with (their databases, the player's JWKS, ...)

    def tokens(self, caller: str) -> ServiceTokens:
        """The identity of the service ``caller`` (its own key, as the live services trust it)."""
        settings = ServiceSettings.from_env(caller, self.env)
        assert settings.service_key, f"no key for {caller}: the live services would refuse its development key"
        return ServiceTokens.from_settings(settings)


@pytest.fixture(scope="session")
async def live_services(
    tmp_path_factory: pytest.TempPathFactory,
    make_database: Callable[[str], Awaitable[str]],
    amqp_names: AmqpNames,
) -> AsyncIterator[LiveServices]:
    """Every service as its own process under granian on a free port, each with its own database.

    They find each other through ``TABLIUM_<NAME>_URL`` (e.g. the event service's ``wallet_url``) and verify
    user tokens with the player's JWKS. Each signs its service tokens with a key of its own and trusts the
    others' public keys, as in production (no development keys). They publish to this run's exchange and
    consume nothing: the shared broker's service queues belong to whoever runs the platform.
    """
    ports = {name: free_port() for name in SERVICES}
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    env = {
        **os.environ,
        "TABLIUM_ENVIRONMENT": "test",
        "TABLIUM_LOG_JSON": "true",
        "TABLIUM_EVENTS_EXCHANGE": amqp_names.exchange,
        "TABLIUM_REDIS_NAMESPACE": f"test-{RUN_ID}-live",
        "TABLIUM_CONSUME_EVENTS": "false",
        "TABLIUM_JWKS_URL": f"{urls['player']}/api/v1/auth/jwks",
        "TABLIUM_PLAYER_ARGON2_MEMORY_KIB": "1024",
        "TABLIUM_PLAYER_ARGON2_TIME_COST": "1",
        **{f"TABLIUM_{name.upper()}_URL": url for name, url in urls.items()},
        **{f"TABLIUM_{name.upper()}_PORT": str(port) for name, port in ports.items()},
        # Keys for the services and for every caller their routes name (a test may call as one).
        **local_service_keys(sorted({*SERVICES, *_internal_callers()}), tmp_path_factory.mktemp("service-keys")),
    }
    for name in SERVICES:
        env[f"TABLIUM_{name.upper()}_DATABASE_URL"] = await make_database(f"live_{name}")
    processes = Processes(tmp_path_factory.mktemp("live-logs"))
    # The blockchain service's node: a local anvil of this run's own.
    chain = LocalChain() if "blockchain" in SERVICES else None
    try:
        if chain is not None:
            chain.start()
            env["TABLIUM_BLOCKCHAIN_RPC_URL"] = chain.url
        for name in SERVICES:
            processes.start(name, [str(BIN / f"tablium-{name}"), "serve"], env, f"{urls[name]}/ready")
        yield LiveServices(urls, env)
    finally:
        processes.stop()
        if chain is not None:
            chain.remove()


@pytest.fixture(scope="session")
def live_tokens(live_services: LiveServices) -> dict[str, dict[str, str]]:
    """``Authorization`` headers: a player's and an admin's (also a tournament director).

    Service tokens are per caller and callee: ``LiveServices.tokens``."""
    player = live_services.urls["player"]
    name = "live_" + uuid.uuid4().hex[:8]
    password = "a live test password"
    accounts = {"player": ["player"], "admin": ["player", "admin", "tournament_director"]}
    headers: dict[str, dict[str, str]] = {}
    for kind, roles in accounts.items():
        username = f"{name}_{kind[0]}"
        role_args = [arg for role in roles for arg in ("--role", role)]
        email = f"{username}@example.com"
        subprocess.run(
            [str(BIN / "tablium-player"), "create-account", "--username", username, "--email", email, *role_args],
            input=f"{password}\n{password}\n".encode(),
            env=live_services.env,
            check=True,
            cwd=ROOT,
            capture_output=True,
        )
        login = httpx.post(f"{player}/api/v1/auth/login", json={"login": username, "password": password})
        assert login.status_code == 200, login.text
        headers[kind] = {"Authorization": f"Bearer {login.json()['access_token']}"}
    return headers
