"""A real wallet service per test module: its own Postgres database; RabbitMQ on the run's test exchange."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from tablium_wallet.app import create_app
from tablium_wallet.settings import WalletSettings

from tablium_kit import db
from tablium_kit.auth import ServiceTokens, StaticKeySource
from tablium_kit.messaging.testing import AmqpNames
from tablium_kit.testing_tokens import AccessTokenIssuer

KID = "wallet-test-key"
ISSUER = AccessTokenIssuer(KID)
SIGNING_KEY = ISSUER.key


def user_token(subject: str, roles: list[str] | None = None) -> str:
    return ISSUER.token(subject, roles)


def bearer(subject: str, roles: list[str] | None = None) -> dict[str, str]:
    return ISSUER.bearer(subject, roles)


# The event service, as the tests trust it (development keys: the wallet's trust store is empty in tests).
SERVICE_TOKENS = ServiceTokens.development("event")


def internal(key: str | None = None, tokens: ServiceTokens = SERVICE_TOKENS) -> dict[str, str]:
    """Headers of an internal call: a service token (the event's) and an Idempotency-Key."""
    return {"Authorization": f"Bearer {tokens.token('wallet')}", "Idempotency-Key": key or uuid.uuid4().hex}


@pytest.fixture(scope="module")
async def settings(make_database: Callable[[str], Awaitable[str]], amqp_names: AmqpNames) -> WalletSettings:
    return WalletSettings.from_env(
        "wallet",
        {
            "TABLIUM_WALLET_DATABASE_URL": await make_database("wallet"),
            "TABLIUM_EVENTS_EXCHANGE": amqp_names.exchange,
            "TABLIUM_ENVIRONMENT": "test",
            # Tests that consume run the consumer on their own queues (see test_events.py).
            "TABLIUM_WALLET_CONSUME_EVENTS": "false",
            "TABLIUM_WALLET_EXPIRY_INTERVAL_S": "0.2",
        },
    )


@pytest.fixture(scope="module")
async def client(settings: WalletSettings) -> AsyncIterator[AsyncTestClient]:
    app = create_app(settings, key_source=StaticKeySource({KID: SIGNING_KEY.public_key()}))
    async with AsyncTestClient(app=app) as test_client:
        yield test_client


@pytest.fixture(scope="module")
async def sessions(
    client: AsyncTestClient, settings: WalletSettings
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on the migrated wallet database (the client fixture migrates it at start-up)."""
    engine = db.create_engine(settings.database_url, pool_size=5)
    yield db.session_factory(engine)
    await engine.dispose()


class WalletApi:
    """The internal calls most tests start with."""

    def __init__(self, client: AsyncTestClient) -> None:
        self.client = client

    async def open(self, owner: str, kind: str, asset: str = "USDT") -> dict[str, Any]:
        response = await self.client.put(
            "/internal/v1/accounts", json={"owner": owner, "kind": kind, "asset": asset}, headers=internal()
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def player(self, asset: str = "USDT") -> dict[str, Any]:
        return await self.open(f"player:{uuid.uuid4()}", "player", asset)

    async def transfer(self, debit: dict[str, Any], credit: dict[str, Any], amount: int, **extra: Any) -> Any:
        body = {
            "id": str(uuid.uuid4()),
            "debit_account_id": debit["id"],
            "credit_account_id": credit["id"],
            "amount": str(amount),
            "asset": debit["asset"],
            "code": "test",
            **extra,
        }
        return await self.client.post("/internal/v1/transfers", json=body, headers=internal())

    async def fund(self, account: dict[str, Any], amount: int) -> None:
        source = await self.open("house", "house_fees", account["asset"])
        response = await self.transfer(source, account, amount, code="funding")
        assert response.status_code == 201, response.text

    async def account(self, account_id: str) -> dict[str, Any]:
        response = await self.client.get(f"/internal/v1/accounts/{account_id}", headers=internal())
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def balance(self, account_id: str) -> dict[str, int]:
        """An account's counters and balances, read as the strings they travel as."""
        return amounts((await self.account(account_id))["balance"])


def amounts(balance: dict[str, Any]) -> dict[str, int]:
    """A balance's figures as ints, once checked to be the decimal strings the API promises."""
    assert all(isinstance(v, str) for v in balance.values()), balance
    return {k: int(v) for k, v in balance.items()}


@pytest.fixture
def api(client: AsyncTestClient) -> WalletApi:
    return WalletApi(client)


async def ledger_totals(sessions: async_sessionmaker[AsyncSession]) -> dict[str, tuple[int, int, int, int]]:
    """Per asset: (credits_posted - debits_posted, credits_pending - debits_pending, negatives, flagged negatives)."""
    async with sessions() as session:
        rows = await session.execute(
            text(
                "SELECT asset, sum(credits_posted) - sum(debits_posted), sum(credits_pending) - sum(debits_pending), "
                "count(*) FILTER (WHERE flags & 1 = 1 AND debits_posted + debits_pending > credits_posted), 0 "
                "FROM accounts GROUP BY asset"
            )
        )
        return {row[0]: (int(row[1]), int(row[2]), int(row[3]), 0) for row in rows}
