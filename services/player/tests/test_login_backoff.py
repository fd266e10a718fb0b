"""Failed logins slow down the guesser, by account and by address, without locking the owner out."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx
import pytest
from litestar.testing import AsyncTestClient
from litestar.testing import transport as litestar_transport

from tablium_player.settings import PlayerSettings

WRONG = "not the password at all"
Address = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


class FakeClock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(client: AsyncTestClient) -> Iterator[FakeClock]:
    throttle = client.app.state.accounts.login_throttle
    fake, real = FakeClock(), throttle.clock
    throttle.clock = fake
    yield fake
    throttle.clock = real


class _AtAddress(litestar_transport.TestClientTransport[Any]):
    """The test client's transport (the app's own event loop), with a client address of our choosing."""

    def __init__(self, client: AsyncTestClient, ip: str) -> None:
        super().__init__(client=client, raise_server_exceptions=True)
        self.ip = ip

    def parse_request(self, request: httpx.Request) -> dict[str, Any]:
        scope = super().parse_request(request)
        scope["client"] = (self.ip, 40000)
        return scope

    # What httpx.AsyncClient expects of a transport; the test client's app is opened and closed by its fixture.
    async def __aenter__(self) -> _AtAddress:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        return None

    async def aclose(self) -> None:
        return None


@pytest.fixture
def address(client: AsyncTestClient) -> Address:
    """A client at a fresh address of its own (the throttle's counters live in Redis for the whole run)."""

    def at_new_address(ip: str | None = None) -> AbstractAsyncContextManager[httpx.AsyncClient]:
        if ip is None:
            host = uuid.uuid4().hex
            ip = f"2001:db8:{host[:4]}:{host[4:8]}::{host[8:12]}"  # the documentation range, a /64 of its own
        return httpx.AsyncClient(transport=_AtAddress(client, ip), base_url="http://testserver.local")

    return at_new_address


async def login(http: httpx.AsyncClient | AsyncTestClient, login: str, password: str) -> httpx.Response:
    return await http.post("/api/v1/auth/login", json={"login": login, "password": password})


async def fail(http: httpx.AsyncClient, login_name: str, times: int) -> None:
    for _ in range(times):
        assert (await login(http, login_name, WRONG)).status_code == 401


def assert_wait(response: httpx.Response, seconds: int | None = None) -> None:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    retry_after = int(response.headers["retry-after"])
    assert retry_after > 0
    if seconds is not None:
        assert retry_after == seconds


async def test_the_backoff_is_the_accounts_whatever_login_string_is_used(
    api: Any, address: Address, settings: PlayerSettings
) -> None:
    """Keyed by the login string, five guesses by username left five more by e-mail address."""
    user = await api.register()
    async with address() as attacker:
        await fail(attacker, user["username"], settings.login_free_failures_per_account)
        assert_wait(await login(attacker, user["email"], WRONG))
        assert_wait(await login(attacker, user["email"].upper(), user["password"]))


async def test_each_further_attempt_waits_twice_as_long(
    api: Any, address: Address, clock: FakeClock, settings: PlayerSettings
) -> None:
    user = await api.register()
    async with address() as guesser:
        await fail(guesser, user["username"], settings.login_free_failures_per_account)
        for delay in (1, 2, 4, 8):
            assert_wait(await login(guesser, user["username"], WRONG), delay)
            clock.now += delay - 0.5
            assert_wait(await login(guesser, user["username"], user["password"]), 1)  # not even the right one
            clock.now += 0.5
            assert (await login(guesser, user["username"], WRONG)).status_code == 401  # one attempt per delay
        clock.now += 16
        assert (await login(guesser, user["email"], user["password"])).status_code == 200
        # The right password clears this address's record, not the failures: it is held again at its next one.
        assert (await login(guesser, user["username"], WRONG)).status_code == 401
        assert_wait(await login(guesser, user["username"], WRONG))


async def test_the_owner_still_logs_in_from_an_address_that_has_not_been_failing(
    api: Any, address: Address, settings: PlayerSettings
) -> None:
    """A hard lock let anyone lock any account with five wrong passwords."""
    victim = await api.register()
    async with address() as attacker:
        await fail(attacker, victim["username"], settings.login_free_failures_per_account)
        assert_wait(await login(attacker, victim["username"], WRONG))
    async with address() as owner:
        assert (await login(owner, victim["username"], victim["password"])).status_code == 200
    # An address that starts failing on the account is held to the account's delay from then on.
    async with address() as second_guesser:
        assert (await login(second_guesser, victim["email"], WRONG)).status_code == 401
        assert_wait(await login(second_guesser, victim["email"], WRONG))


async def test_an_address_failing_on_many_logins_waits_too(
    api: Any, address: Address, settings: PlayerSettings
) -> None:
    user = await api.register()
    async with address() as sprayer:
        for n in range(settings.login_free_failures_per_ip):
            assert (await login(sprayer, f"nobody_{n}_{uuid.uuid4().hex[:6]}", WRONG)).status_code == 401
        assert_wait(await login(sprayer, user["username"], user["password"]))
    async with address() as elsewhere:
        assert (await login(elsewhere, user["username"], user["password"])).status_code == 200


async def test_an_ipv6_client_counts_by_its_64(api: Any, address: Address, settings: PlayerSettings) -> None:
    """Every address of a /64 is one subscriber's: taking the next one must not give fresh budgets."""
    user = await api.register()
    prefix = "2001:db8:" + ":".join(uuid.uuid4().hex[n : n + 4] for n in (0, 4))
    for n in range(settings.login_free_failures_per_account):
        async with address(f"{prefix}::{n + 1:x}") as rotating:
            assert (await login(rotating, user["username"], WRONG)).status_code == 401
    async with address(f"{prefix}:ffff:ffff:ffff:ffff") as next_one:
        assert_wait(await login(next_one, user["username"], user["password"]))
    async with address(f"{prefix[:-1]}{'0' if prefix[-1] != '0' else '1'}::1") as other_subscriber:
        assert (await login(other_subscriber, user["username"], user["password"])).status_code == 200


async def test_concurrent_guesses_do_not_slip_past_the_backoff(
    api: Any, address: Address, settings: PlayerSettings
) -> None:
    """Checking first and counting failures after let every guess of a burst through."""
    user = await api.register()
    async with address() as attacker:
        answers = await asyncio.gather(*(login(attacker, user["username"], WRONG) for _ in range(20)))
    statuses = sorted(response.status_code for response in answers)
    assert statuses.count(401) == settings.login_free_failures_per_account, statuses
    assert statuses.count(429) == 20 - settings.login_free_failures_per_account


async def test_unknown_logins_are_throttled_like_accounts(api: Any, address: Address) -> None:
    """The answers to a guesser must not tell which logins exist."""
    user = await api.register()
    async with address() as first, address() as second:
        nobody = f"nobody_{uuid.uuid4().hex[:8]}"
        known = [(await login(first, user["username"], WRONG)).status_code for _ in range(7)]
        unknown = [(await login(second, nobody, WRONG)).status_code for _ in range(7)]
    assert known == unknown == [401] * 5 + [429] * 2
