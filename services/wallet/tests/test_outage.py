"""A database outage during a batch is a 503 with Retry-After (retry the same batch), never a refusal."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy.engine import make_url
from tablium_wallet.app import create_app
from tablium_wallet.settings import WalletSettings

from tablium_kit.auth import StaticKeySource
from tablium_kit.messaging.testing import AmqpNames
from tablium_kit.outage import TcpProxy

from .conftest import KID, SIGNING_KEY, WalletApi, internal


@pytest.fixture(scope="module")
async def proxy(make_database: Callable[[str], Awaitable[str]]) -> AsyncIterator[tuple[TcpProxy, str]]:
    url = make_url(await make_database("wallet_outage"))
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    yield proxy, url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    proxy.close()


@pytest.fixture(scope="module")
async def client(proxy: tuple[TcpProxy, str], amqp_names: AmqpNames) -> AsyncIterator[AsyncTestClient]:
    """A wallet whose database is behind the proxy."""
    settings = WalletSettings.from_env(
        "wallet",
        {
            "TABLIUM_WALLET_DATABASE_URL": proxy[1],
            "TABLIUM_EVENTS_EXCHANGE": amqp_names.exchange,
            "TABLIUM_ENVIRONMENT": "test",
            "TABLIUM_WALLET_CONSUME_EVENTS": "false",
        },
    )
    app = create_app(settings, key_source=StaticKeySource({KID: SIGNING_KEY.public_key()}))
    async with AsyncTestClient(app=app) as test_client:
        yield test_client


def _transfer(debit: dict[str, Any], credit: dict[str, Any], amount: int) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "debit_account_id": debit["id"],
        "credit_account_id": credit["id"],
        "amount": str(amount),
        "asset": "USDT",
        "code": "payout",
    }


def _assert_unavailable(response: Any) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"].isdigit()
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["type"] == "urn:tablium:problem:service-unavailable"


async def test_a_batch_during_an_outage_is_503_and_goes_through_once_the_database_is_back(
    client: AsyncTestClient, proxy: tuple[TcpProxy, str]
) -> None:
    tcp, api = proxy[0], WalletApi(client)
    alice, bob = await api.player(), await api.player()
    await api.fund(alice, 1_000)
    batch = {"transfers": [_transfer(alice, bob, 10 * (i + 1)) for i in range(5)]}
    single = _transfer(alice, bob, 1)
    tcp.cut()
    try:
        # The pooled connections are reset under the first attempts; then new ones are refused.
        for _ in range(2):
            _assert_unavailable(await client.post("/internal/v1/transfers/batch", json=batch, headers=internal()))
            _assert_unavailable(await client.post("/internal/v1/transfers", json=single, headers=internal()))
    finally:
        tcp.restore()
    # Nothing was applied: the same batch now makes every transfer, once.
    response = await client.post("/internal/v1/transfers/batch", json=batch, headers=internal())
    assert response.status_code == 200, response.text
    assert [r["status"] for r in response.json()["results"]] == [201] * 5
    again = await client.post("/internal/v1/transfers/batch", json=batch, headers=internal())
    assert [r["status"] for r in again.json()["results"]] == [200] * 5
    assert (await api.balance(bob["id"]))["balance"] == 150
