"""A database outage is a 503 with Retry-After (the same request may succeed shortly), never a 409 or 500."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from litestar import get
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from tablium_kit.app import ServiceDefinition, create_service_app
from tablium_kit.auth import StaticKeySource
from tablium_kit.deps import DbSession
from tablium_kit.errors import transient_failure
from tablium_kit.outage import TcpProxy
from tablium_kit.settings import ServiceSettings

from .conftest import KID


@get("/now")
async def now(db_session: DbSession) -> dict[str, str]:
    return {"now": str(await db_session.scalar(text("SELECT now()")))}


@get("/broken")
async def broken(db_session: DbSession) -> None:
    await db_session.execute(text("SELECT no_such_column FROM pg_class"))


@get("/upstream-down")
async def upstream_down() -> None:
    # What the internal client raises once its retries of a service that is down are used up.
    raise httpx.ConnectError("All connection attempts failed")


@get("/deadlocked")
async def deadlocked() -> None:
    # What a deadlock that outlived a service's retries raises (SQLSTATE 40P01).
    error = Exception("deadlock detected")
    error.sqlstate = "40P01"  # type: ignore[attr-defined]
    raise OperationalError("UPDATE accounts ...", {}, error)


@pytest.fixture(scope="module")
async def proxy(make_database: Callable[[str], Awaitable[str]]) -> AsyncIterator[tuple[TcpProxy, str]]:
    url = make_url(await make_database("outage"))
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    yield proxy, url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    proxy.close()


@pytest.fixture(scope="module")
async def client(proxy: tuple[TcpProxy, str], signing_key: rsa.RSAPrivateKey) -> AsyncIterator[AsyncTestClient]:
    settings = ServiceSettings.from_env(
        "outage", {"TABLIUM_OUTAGE_DATABASE_URL": proxy[1], "TABLIUM_ENVIRONMENT": "test"}
    )
    app = create_service_app(
        ServiceDefinition(
            settings=settings,
            title="outage",
            route_handlers=[now, broken, deadlocked, upstream_down],
            key_source=StaticKeySource({KID: signing_key.public_key()}),
        )
    )
    async with AsyncTestClient(app=app) as test_client:
        yield test_client


def assert_unavailable(response: object) -> None:
    status = getattr(response, "status_code", None)
    assert status == 503, getattr(response, "text", response)
    headers = getattr(response, "headers", {})
    assert headers["retry-after"].isdigit()
    assert headers["content-type"].startswith("application/problem+json")


async def test_a_cut_database_is_503_with_retry_after_and_back_when_restored(
    client: AsyncTestClient, proxy: tuple[TcpProxy, str]
) -> None:
    tcp = proxy[0]
    assert (await client.get("/now")).status_code == 200  # a pooled connection through the proxy
    tcp.cut()
    try:
        # The pooled connection is reset mid-use; then new connections are refused.
        for _ in range(3):
            response = await client.get("/now")
            assert_unavailable(response)
            assert response.json()["type"] == "urn:tablium:problem:service-unavailable"
    finally:
        tcp.restore()
    assert (await client.get("/now")).status_code == 200


async def test_a_lasting_deadlock_is_503_and_a_bad_query_is_still_500(client: AsyncTestClient) -> None:
    assert_unavailable(await client.get("/deadlocked"))
    response = await client.get("/broken")
    assert response.status_code == 500, response.text
    assert "retry-after" not in response.headers


async def test_an_unreachable_upstream_service_is_503_not_500(client: AsyncTestClient) -> None:
    """Found by the chaos test (tests/test_chaos.py): the event service answered 500 to a hand report while
    the wallet it pays prizes through was being restarted."""
    response = await client.get("/upstream-down")
    assert_unavailable(response)
    assert response.json()["type"] == "urn:tablium:problem:service-unavailable"


def test_what_counts_as_transient() -> None:
    assert transient_failure(ConnectionRefusedError(111, "refused"))
    assert transient_failure(TimeoutError())
    assert not transient_failure(ValueError("no"))
    wrapped = OperationalError("SELECT 1", {}, Exception("boom"))
    assert not transient_failure(wrapped)
    chained = RuntimeError("while talking to the database")
    chained.__cause__ = ConnectionResetError(104, "reset")
    assert transient_failure(chained)
