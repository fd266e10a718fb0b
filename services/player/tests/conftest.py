"""A real player service per test module: its own Postgres database, real Redis."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tablium_kit import db
from tablium_kit.messaging import CloudEvent
from tablium_kit.messaging.testing import AmqpNames
from tablium_kit.testing import RUN_ID
from tablium_player.app import create_app
from tablium_player.db.models import Player
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
            # Tests that consume run the consumer on their own queues (test_hand_stats.py).
            "TABLIUM_PLAYER_CONSUME_EVENTS": "false",
        },
    )


@pytest.fixture(scope="module")
async def client(settings: PlayerSettings) -> AsyncIterator[AsyncTestClient]:
    async with AsyncTestClient(app=create_app(settings)) as test_client:
        yield test_client


@pytest.fixture(scope="module")
async def sessions(
    client: AsyncTestClient, settings: PlayerSettings
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on the module's database (migrated by the app's start-up)."""
    engine = db.create_engine(settings.database_url, pool_size=4)
    yield db.session_factory(engine)
    await engine.dispose()


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


# -- lobby.hand_completed as the lobby publishes it (docs/events/player.md); no service imports another ---------


@dataclass(frozen=True)
class Seat:
    """One player's line in a hand: chips before and after, rake paid, chips won, VPIP and PFR."""

    player_id: uuid.UUID
    before: int
    after: int
    rake: int = 0
    won: int = 0
    vpip: bool = False
    pfr: bool = False


def hand_completed(
    seats: list[Seat],
    *,
    hand_id: uuid.UUID | None = None,
    table_id: uuid.UUID | None = None,
    asset: str = "USDT",
    big_blind: int = 100,
    tournament_id: uuid.UUID | None = None,
) -> dict[str, Any]:
    """The ``data`` of a ``lobby.hand_completed`` event, every field the lobby writes."""
    hand_id = hand_id or uuid.uuid4()
    rake = sum(s.rake for s in seats)
    return {
        "table_id": str(table_id or uuid.uuid4()),
        "tournament_id": str(tournament_id) if tournament_id else None,
        "hand_id": str(hand_id),
        "hand_history_id": str(hand_id),
        "hand_no": 1,
        "seq": 7,
        "asset": asset,
        "small_blind": str(big_blind // 2),
        "big_blind": str(big_blind),
        "ante": "0",
        "players": [
            {
                "seat": n + 1,
                "player_id": str(s.player_id),
                "stack_before": str(s.before),
                "stack_after": str(s.after),
                "rake": str(s.rake),
                "won": str(s.won),
                "vpip": s.vpip,
                "pfr": s.pfr,
            }
            for n, s in enumerate(seats)
        ],
        "winners": [str(s.player_id) for s in seats if s.won > 0],
        "rake": str(rake),
    }


def lobby_event(data: dict[str, Any], event_id: uuid.UUID | None = None) -> CloudEvent:
    """The envelope the lobby's outbox puts around it (``source`` is the lobby's, or it is dead-lettered)."""
    return CloudEvent(
        id=event_id or uuid.uuid4(),
        source="/services/lobby",
        type="lobby.hand_completed",
        time=datetime.now(UTC),
        subject=data["table_id"],
        data=data,
    )


async def insert_players(sessions: async_sessionmaker[AsyncSession], count: int) -> list[uuid.UUID]:
    """Accounts straight in the table (no password hashing): for tests that need many players fast."""
    ids = [uuid.uuid4() for _ in range(count)]
    async with sessions() as session, session.begin():
        for player_id in ids:
            name = "p" + player_id.hex[:12]
            session.add(
                Player(
                    id=player_id,
                    username=name,
                    email=f"{name}@example.com",
                    username_key=name,
                    email_key=f"{name}@example.com",
                    password_hash="-",
                    roles=["player"],
                    preferences={},
                )
            )
    return ids
