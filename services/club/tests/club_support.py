"""Test support: a real club service per test module (its own Postgres database, the run's exchange), tokens, calls."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from tablium_club.app import create_app
from tablium_club.settings import ClubSettings

from tablium_kit import db
from tablium_kit.auth import StaticKeySource
from tablium_kit.messaging.testing import AmqpNames

KID = "club-test-key"
SIGNING_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def bearer(subject: uuid.UUID | str) -> dict[str, str]:
    now = int(time.time())
    claims = {
        "iss": "tablium-player",
        "aud": "tablium",
        "sub": str(subject),
        "iat": now,
        "exp": now + 600,
        "typ": "access",
        "roles": ["player"],
        "jti": uuid.uuid4().hex,
    }
    return {"Authorization": "Bearer " + jwt.encode(claims, SIGNING_KEY, algorithm="RS256", headers={"kid": KID})}


@pytest.fixture(scope="module")
async def settings(make_database: Callable[[str], Awaitable[str]], amqp_names: AmqpNames) -> ClubSettings:
    return ClubSettings.from_env(
        "club",
        {
            "TABLIUM_CLUB_DATABASE_URL": await make_database("club"),
            "TABLIUM_EVENTS_EXCHANGE": amqp_names.exchange,
            "TABLIUM_ENVIRONMENT": "test",
            # The shared broker's club queue is the running platform's; tests hand events to the handlers.
            "TABLIUM_CLUB_CONSUME_EVENTS": "false",
        },
    )


@pytest.fixture(scope="module")
async def client(settings: ClubSettings) -> AsyncIterator[AsyncTestClient]:
    app = create_app(settings, key_source=StaticKeySource({KID: SIGNING_KEY.public_key()}))
    async with AsyncTestClient(app=app) as test_client:
        yield test_client


@pytest.fixture(scope="module")
async def sessions(client: AsyncTestClient, settings: ClubSettings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = db.create_engine(settings.database_url, pool_size=2)
    yield db.session_factory(engine)
    await engine.dispose()


class Clubs:
    """The calls most tests start with; each asserts its status."""

    def __init__(self, client: AsyncTestClient) -> None:
        self.client = client

    async def call(self, method: str, path: str, who: uuid.UUID, status: int = 200, **kwargs: Any) -> Any:
        response = await self.client.request(method, "/api/v1" + path, headers=bearer(who), **kwargs)
        assert response.status_code == status, (method, path, response.status_code, response.text)
        if status >= 400:
            assert response.headers["content-type"] == "application/problem+json"
        return response.json() if response.content else None

    async def create(self, owner: uuid.UUID, **settings: Any) -> str:
        body = {"name": "The Club", **settings}
        club: dict[str, Any] = await self.call("POST", "/clubs", owner, 201, json=body)
        assert club["owner_id"] == str(owner)
        assert club["my_role"] == "owner"
        return str(club["id"])

    async def invite(self, club: str, staff: uuid.UUID, **body: Any) -> str:
        invite = await self.call("POST", f"/clubs/{club}/invites", staff, 201, json=body)
        return str(invite["code"])

    async def join(self, code: str, player: uuid.UUID, status: int = 200) -> Any:
        return await self.call("POST", "/clubs/join", player, status, json={"code": code})

    async def add_member(self, club: str, owner: uuid.UUID, role: str = "member") -> uuid.UUID:
        player = uuid.uuid4()
        await self.join(await self.invite(club, owner), player)
        if role != "member":
            await self.call("PUT", f"/clubs/{club}/members/{player}/role", owner, json={"role": role})
        return player

    async def members(self, club: str, who: uuid.UUID) -> dict[str, dict[str, Any]]:
        found = await self.call("GET", f"/clubs/{club}/members", who)
        return {m["player_id"]: m for m in found}


@pytest.fixture
def clubs(client: AsyncTestClient) -> Clubs:
    return Clubs(client)


async def club_events(sessions: async_sessionmaker[AsyncSession], club_id: str) -> list[dict[str, Any]]:
    """The club's events from the outbox, in write order: (type, data)."""
    async with sessions() as session:
        rows = await session.execute(
            text("SELECT type, envelope FROM outbox WHERE subject = :subject ORDER BY seq"), {"subject": club_id}
        )
        return [{"type": type_, **envelope["data"]} for type_, envelope in rows.tuples()]
