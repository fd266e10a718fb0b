"""Registration refuses guessable passwords and is throttled per client address."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy.exc import IntegrityError

from tablium_kit import db
from tablium_kit.errors import Conflict
from tablium_player.app import password_hasher
from tablium_player.domain.rules import PASSWORD_MAX
from tablium_player.service import create_player
from tablium_player.settings import PlayerSettings


@pytest.mark.parametrize(
    "password",
    [
        "1111111111",  # long enough was the only rule
        "password123",
        "qwertyuiop",
        "iloveyou2020",
        "abcdefghijk",
        "{username}1",  # derived from the username
        "{username}@example.com",  # the e-mail address itself
    ],
)
async def test_guessable_passwords_are_refused(client: AsyncTestClient, api: Any, password: str) -> None:
    user = api.new_user()
    response = await client.post(
        "/api/v1/auth/register", json={**user, "password": password.format(username=user["username"])}
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["detail"].startswith("password")


LONGEST = ("a river of seven quiet stones " * 5)[:PASSWORD_MAX]


@pytest.mark.parametrize("password", ["correct horse battery", "Tr0ub4dor&3-poker", LONGEST])
async def test_strong_passwords_are_accepted(api: Any, password: str) -> None:
    await api.register({**api.new_user(), "password": password})


@pytest.fixture
def registration_limit(client: AsyncTestClient) -> Iterator[int]:
    limiter = client.app.state.accounts.registration_limiter
    limiter.limit, usual = 3, limiter.limit
    yield 3
    limiter.limit = usual


async def test_registrations_are_throttled_per_address(
    client: AsyncTestClient, api: Any, registration_limit: int
) -> None:
    # Refused attempts count too: each answer tells whether an address is registered.
    refused = await client.post("/api/v1/auth/register", json={**api.new_user(), "password": "1111111111"})
    assert refused.status_code == 422
    for _ in range(registration_limit - 1):
        await api.register()
    throttled = await client.post("/api/v1/auth/register", json=api.new_user())
    assert throttled.status_code == 429, throttled.text
    assert throttled.headers["content-type"].startswith("application/problem+json")
    assert int(throttled.headers["retry-after"]) > 0


async def test_a_taken_email_is_not_named(client: AsyncTestClient, api: Any) -> None:
    """The 409 is the same whether the username or the address is taken, and names neither value."""
    owner = await api.register()
    by_email = await client.post("/api/v1/auth/register", json={**api.new_user(), "email": owner["email"]})
    by_name = await client.post("/api/v1/auth/register", json={**api.new_user(), "username": owner["username"]})
    assert by_email.status_code == by_name.status_code == 409
    assert by_email.json() == by_name.json()
    assert owner["email"] not in by_email.text


async def test_a_registration_racing_past_the_check_is_a_409(settings: PlayerSettings, api: Any) -> None:
    """Two registrations that both pass the "is it taken?" query: the unique index decides, as a 409."""
    engine = db.create_engine(settings.database_url, pool_size=2)
    sessions = db.session_factory(engine)
    hasher = password_hasher(settings)
    user = api.new_user()
    try:
        async with sessions() as first, sessions() as second:
            await create_player(first, hasher, **user)  # flushed, not committed: the second can't see it
            racing = asyncio.create_task(
                create_player(second, hasher, **{**user, "username": user["username"].upper()})
            )
            await asyncio.sleep(0.5)  # the second has passed its check and waits on the index
            await first.commit()
            with pytest.raises(Conflict) as refused:
                await racing
            assert isinstance(refused.value.__cause__, IntegrityError)
    finally:
        await engine.dispose()
