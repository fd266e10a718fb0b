"""A real player service per test module: its own Postgres database, real Redis."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from tablium_kit.messaging.testing import AmqpNames
from tablium_kit.testing import RUN_ID
from tablium_player.app import create_app
from tablium_player.settings import PlayerSettings


@pytest.fixture(scope="module")
async def settings(make_database: Callable[[str], Awaitable[str]], amqp_names: AmqpNames) -> PlayerSettings:
    return PlayerSettings.from_env(
        "player",
        {
            "TABLIUM_PLAYER_DATABASE_URL": await make_database("player"),
            "TABLIUM_EVENTS_EXCHANGE": amqp_names.exchange,
            "TABLIUM_REDIS_NAMESPACE": f"test-{RUN_ID}",
            "TABLIUM_ENVIRONMENT": "test",
            # Cheaper argon2id so hundreds of logins stay fast; the algorithm is the same.
            "TABLIUM_PLAYER_ARGON2_MEMORY_KIB": "1024",
            "TABLIUM_PLAYER_ARGON2_TIME_COST": "1",
            # Tests register hundreds of accounts from one address; test_registration.py checks the limit.
            "TABLIUM_PLAYER_REGISTRATIONS_PER_IP": "100000",
        },
    )


@pytest.fixture(scope="module")
async def client(settings: PlayerSettings) -> AsyncIterator[AsyncTestClient]:
    async with AsyncTestClient(app=create_app(settings)) as test_client:
        yield test_client


@pytest.fixture(autouse=True)
async def clear_login_limits() -> AsyncIterator[None]:
    """Login and registration throttles live in Redis (under this run's namespace); each test starts with none."""
    redis = Redis.from_url("redis://127.0.0.1:6379/0")
    keys = [key for what in ("login", "register") async for key in redis.scan_iter(f"test-{RUN_ID}:player:{what}:*")]
    if keys:
        await redis.delete(*keys)
    yield
    await redis.aclose()


PASSWORD = "correct horse battery"


class PlayerApi:
    """The calls most tests start with."""

    def __init__(self, client: AsyncTestClient) -> None:
        self.client = client

    @staticmethod
    def new_user() -> dict[str, str]:
        name = "u" + uuid.uuid4().hex[:10]
        return {"username": name, "email": f"{name}@example.com", "password": PASSWORD}

    async def register(self, user: dict[str, str] | None = None) -> dict[str, Any]:
        user = user or self.new_user()
        response = await self.client.post("/api/v1/auth/register", json=user)
        assert response.status_code == 201, response.text
        return {**user, **response.json()}

    async def login(self, user: dict[str, Any], **headers: str) -> dict[str, Any]:
        response = await self.client.post(
            "/api/v1/auth/login", json={"login": user["username"], "password": user["password"]}, headers=headers
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    @staticmethod
    def bearer(tokens: dict[str, Any]) -> dict[str, str]:
        return {"Authorization": f"Bearer {tokens['access_token']}"}


@pytest.fixture
def api(client: AsyncTestClient) -> PlayerApi:
    return PlayerApi(client)
