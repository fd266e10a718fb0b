"""The lobby against the REAL wallet (a separate process with its own database), real Postgres, Redis and
RabbitMQ (the run's own exchange). Lobby processes for over-the-wire tests verify tokens through a small
JWKS server of the test's signing key."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis
from tablium_lobby.app import create_app
from tablium_lobby.settings import LobbySettings

from tablium_kit.auth import StaticKeySource
from tablium_kit.messaging.testing import AmqpNames
from tablium_kit.service_processes import ServiceProcess, WalletLedger, serve_jwks, start_service, wallet_env
from tablium_kit.service_processes import free_port as free_port  # the lobby tests' name for it
from tablium_kit.testing_tokens import AccessTokenIssuer

VENV_BIN = Path(__file__).resolve().parents[3] / ".venv" / "bin"
KID = "lobby-test-key"
# The player service's development key: the gateway's kong.yml trusts it too, so tests can go through it.
DEV_KEYS = Path(__file__).resolve().parents[3] / "services" / "player" / "dev-keys"
SIGNING_KEY = load_pem_private_key((DEV_KEYS / "jwt-dev-private.pem").read_bytes(), password=None)
assert isinstance(SIGNING_KEY, rsa.RSAPrivateKey)
ISSUER = AccessTokenIssuer(KID, SIGNING_KEY, ttl_s=3600)


def user_token(subject: str, roles: list[str] | None = None) -> str:
    return ISSUER.token(subject, roles)


def bearer(subject: str, roles: list[str] | None = None) -> dict[str, str]:
    return ISSUER.bearer(subject, roles)


ADMIN = bearer(str(uuid.uuid4()), ["player", "admin"])


def wait_healthy(process: subprocess.Popen[bytes], url: str, name: str) -> None:
    """Waits for a process the test started itself (a gateway, say) to answer ``/health``."""
    ServiceProcess(name, process, url, Path(os.devnull)).wait_ready()


@pytest.fixture(scope="session")
def jwks_url() -> Iterator[str]:
    """A JWKS document of the test signing key, as the player service publishes its keys."""
    with serve_jwks(KID, SIGNING_KEY.public_key()) as url:
        yield url


@pytest.fixture(scope="session")
async def wallet_url(make_database: Callable[[str], Awaitable[str]], amqp_names: AmqpNames) -> AsyncIterator[str]:
    wallet = start_service("wallet", wallet_env(await make_database("wallet"), amqp_names.exchange))
    yield wallet.url
    wallet.stop()


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
        # The shared broker's lobby queue is the running platform's; tests apply club events themselves.
        "TABLIUM_LOBBY_CONSUME_EVENTS": "false",
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


class LobbyProcess(ServiceProcess):
    """A real lobby instance and the database it runs on (several may share one)."""

    def __init__(self, service: ServiceProcess, database_url: str) -> None:
        super().__init__(service.name, service.process, service.url, service.log)
        self.database_url = database_url


@pytest.fixture(scope="module")
async def start_lobby(
    make_database: Callable[[str], Awaitable[str]],
    amqp_names: AmqpNames,
    wallet_url: str,
    run_id: str,
    jwks_url: str,
) -> AsyncIterator[Callable[..., Awaitable[LobbyProcess]]]:
    """Factory of real ``tablium-lobby serve`` processes; several share one database when asked."""
    lobbies: list[LobbyProcess] = []

    async def start(database_url: str | None = None, **extra: str) -> LobbyProcess:
        database_url = database_url or await make_database("lobby_proc")
        env = {
            **lobby_env(database_url, amqp_names, wallet_url, run_id, **extra),
            "TABLIUM_LOBBY_JWKS_URL": jwks_url,
            # TABLIUM_TEST_LOBBY_LOG_LEVEL=INFO (with TABLIUM_TEST_KEEP_LOGS=1) to chase a failure in the log.
            "TABLIUM_LOG_LEVEL": os.environ.get("TABLIUM_TEST_LOBBY_LOG_LEVEL", "WARNING"),
        }
        lobby = LobbyProcess(start_service("lobby", env), database_url)
        lobbies.append(lobby)
        return lobby

    yield start
    for lobby in lobbies:
        lobby.stop()
        if not os.environ.get("TABLIUM_TEST_KEEP_LOGS"):
            lobby.log.unlink(missing_ok=True)


class Ledger(WalletLedger):
    """The wallet's internal API as the lobby calls it: fund players, read balances."""

    def __init__(self, url: str) -> None:
        super().__init__(url, "lobby")


@pytest.fixture
async def ledger(wallet_url: str) -> AsyncIterator[Ledger]:
    ledger = Ledger(wallet_url)
    yield ledger
    await ledger.aclose()


async def new_table(client: Any, **config: Any) -> dict[str, Any]:
    body = {"name": "Test table", "small_blind": "1", "big_blind": "2", "seats": 6, **config}
    response = await client.post("/api/v1/tables", json=body, headers=ADMIN)
    assert response.status_code == 201, response.text
    table: dict[str, Any] = response.json()
    return table


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    """The lobby's Redis, for what tests read of its keys (leases, presence)."""
    client = Redis.from_url(LobbySettings.from_env("lobby", {}).redis_url, decode_responses=True)
    yield client
    await client.aclose()
