"""A real rakeback service per test module: its own Postgres database, the run's test exchange.

Facts reach the handlers as the kit's consumer hands them over (``deliver``: the inbox row and the handler
in one transaction), or through RabbitMQ with a real consumer where the broker is the point.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from tablium_rakeback.app import create_app
from tablium_rakeback.db.models import MESSAGING
from tablium_rakeback.domain.tiers import DEFAULT_TIERS
from tablium_rakeback.events.handlers import HANDLERS
from tablium_rakeback.services import accrual, totals
from tablium_rakeback.settings import RakebackSettings

from tablium_kit import db
from tablium_kit.auth import StaticKeySource
from tablium_kit.messaging import CloudEvent
from tablium_kit.messaging.catalog import source_of
from tablium_kit.messaging.testing import AmqpNames

KID = "rakeback-test-key"
SIGNING_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def bearer(subject: uuid.UUID | str, roles: list[str] | None = None) -> dict[str, str]:
    now = int(time.time())
    claims = {
        "iss": "tablium-player",
        "aud": "tablium",
        "sub": str(subject),
        "iat": now,
        "exp": now + 600,
        "typ": "access",
        "roles": roles or ["player"],
        "jti": uuid.uuid4().hex,
    }
    return {"Authorization": f"Bearer {jwt.encode(claims, SIGNING_KEY, algorithm='RS256', headers={'kid': KID})}"}


@pytest.fixture(scope="module")
async def settings(make_database: Callable[[str], Awaitable[str]], amqp_names: AmqpNames) -> RakebackSettings:
    return RakebackSettings.from_env(
        "rakeback",
        {
            "TABLIUM_RAKEBACK_DATABASE_URL": await make_database("rakeback"),
            "TABLIUM_EVENTS_EXCHANGE": amqp_names.exchange,
            "TABLIUM_ENVIRONMENT": "test",
            "TABLIUM_RAKEBACK_CONSUME_EVENTS": "false",
            "TABLIUM_RAKEBACK_PAYOUT_SCHEDULER": "false",
        },
    )


@pytest.fixture(scope="module")
async def client(settings: RakebackSettings) -> AsyncIterator[AsyncTestClient]:
    app = create_app(settings, key_source=StaticKeySource({KID: SIGNING_KEY.public_key()}))
    async with AsyncTestClient(app=app) as test_client:
        yield test_client


@pytest.fixture(scope="module")
async def sessions(
    client: AsyncTestClient, settings: RakebackSettings
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on the module's database (migrated by the app's start-up)."""
    engine = db.create_engine(settings.database_url, pool_size=5)
    yield db.session_factory(engine)
    await engine.dispose()


def event(type_: str, data: dict[str, Any], *, at: datetime | None = None, subject: str = "x") -> CloudEvent:
    """An envelope from the type's publisher (any other source is dead-lettered as forged)."""
    return CloudEvent(
        id=uuid.uuid4(), source=source_of(type_), type=type_, time=at or datetime.now(UTC), subject=subject, data=data
    )


async def deliver(sessions: async_sessionmaker[AsyncSession], fact: CloudEvent) -> bool:
    """What the kit's consumer does with one delivery: the inbox row and the handler, one transaction."""
    async with sessions() as session, session.begin():
        first = await session.scalar(
            insert(MESSAGING.inbox)
            .values(consumer="rakeback", event_id=fact.id)
            .on_conflict_do_nothing()
            .returning(MESSAGING.inbox.c.event_id)
        )
        if first is None:
            return False
        await HANDLERS[fact.type](session, fact)
    return True


def hand(
    players: dict[uuid.UUID, int],
    *,
    at: datetime,
    club_id: uuid.UUID | None = None,
    union_id: uuid.UUID | None = None,
    hand_id: uuid.UUID | None = None,
    asset: str = "USDT",
    with_club_fields: bool = True,
) -> CloudEvent:
    """``lobby.hand_completed`` as the lobby writes it, rake per player; ``with_club_fields=False``: an older
    lobby's payload without ``club_id``/``union_id``."""
    data: dict[str, Any] = {
        "table_id": str(uuid.uuid4()),
        "tournament_id": None,
        "hand_id": str(hand_id or uuid.uuid4()),
        "hand_history_id": str(hand_id or uuid.uuid4()),
        "hand_no": 1,
        "seq": 3,
        "asset": asset,
        "small_blind": "50",
        "big_blind": "100",
        "ante": "0",
        "players": [
            {
                "seat": n + 1,
                "player_id": str(p),
                "stack_before": "1000",
                "stack_after": "900",
                "rake": str(r),
                "won": "0",
            }
            for n, (p, r) in enumerate(players.items())
        ],
        "winners": [],
        "rake": str(sum(players.values())),
    }
    if with_club_fields:
        data["club_id"] = str(club_id) if club_id else None
        data["union_id"] = str(union_id) if union_id else None
    return event("lobby.hand_completed", data, at=at, subject=data["table_id"])


def member(
    club_id: uuid.UUID, player_id: uuid.UUID, seq: int, role: str = "member", agent: uuid.UUID | None = None
) -> CloudEvent:
    data = {
        "club_id": str(club_id),
        "player_id": str(player_id),
        "role": role,
        "agent_id": str(agent) if agent else None,
        "seq": seq,
    }
    return event("club.member_joined", data, subject=str(club_id))


def deal(
    club_id: uuid.UUID,
    version: int,
    effective_from: datetime,
    seq: int,
    *,
    club_bps: int,
    player_bps: int,
    union: tuple[uuid.UUID, int] | None = None,
    agents: list[dict[str, Any]] | None = None,
) -> CloudEvent:
    data = {
        "club_id": str(club_id),
        "union_id": str(union[0]) if union else None,
        "version": version,
        "effective_from": effective_from.isoformat(),
        "union_bps": union[1] if union else None,
        "club_bps": club_bps,
        "player_bps": player_bps,
        "agents": agents or [],
        "seq": seq,
    }
    return event("club.deal_changed", data, subject=str(club_id))


async def hand_parts(
    sessions: async_sessionmaker[AsyncSession], hand_ids: list[uuid.UUID]
) -> dict[tuple[uuid.UUID, uuid.UUID, str, str], int]:
    """The audit of hands: each accrued rake's parts, by hand, paying player, receiver kind and receiver."""
    async with sessions() as session:
        audited = await accrual.hand_parts(session, hand_ids, dict(DEFAULT_TIERS))
    return {
        (rake.hand_id, rake.player_id, part.kind, part.beneficiary): part.amount
        for rake, parts in audited
        for part in parts or []
    }


async def assert_totals_are_the_hands(sessions: async_sessionmaker[AsyncSession]) -> None:
    """Every accrual total (paid and unpaid rows together) is exactly the parts of the accrued rakes of
    its period, receiver and paying player, hands and rake included: nothing lost or counted twice by
    upserts, re-evaluations or payout runs."""
    async with sessions() as session:
        rows = await session.execute(
            text(
                "SELECT period_start, kind, beneficiary, player_id, asset, sum(hands), sum(rake), sum(amount) "
                "FROM accrual_totals GROUP BY 1, 2, 3, 4, 5"
            )
        )
        stored = {tuple(r[:5]): (int(r[5]), int(r[6]), int(r[7])) for r in rows if int(r[5])}
        hand_ids = list(
            (await session.scalars(text("SELECT DISTINCT hand_id FROM rakes WHERE status = 'accrued'"))).all()
        )
        audited = await accrual.hand_parts(session, hand_ids, dict(DEFAULT_TIERS))
    expected = {
        key: (hands, rake, amount)
        for key, (hands, rake, amount) in totals.totals_of(
            [(rake, parts) for rake, parts in audited if parts is not None]
        ).items()
    }
    assert stored == expected
