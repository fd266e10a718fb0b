"""A bot plays for hours on access tokens that live minutes: a refused token is renewed with the refresh token,
once for all the requests that saw it refused (refresh tokens rotate; presenting a rotated one again revokes the
whole login). Against the real player service, through the dev gateway."""

from __future__ import annotations

import asyncio
import random

import httpx
from tablium_lobby.bots.cli import register


def a_client_address() -> dict[str, str]:
    # A fresh address per test: login limits count per client address, in Redis, across runs.
    return {"X-Forwarded-For": f"198.19.{random.randrange(256)}.{random.randrange(1, 255)}"}


async def test_a_refused_access_token_is_renewed_once_and_the_request_goes_through(platform: dict[str, str]) -> None:
    base = platform["gateway"]
    refreshes: list[httpx.Request] = []

    async def count_refreshes(request: httpx.Request) -> None:
        if request.url.path == "/api/v1/auth/refresh":
            refreshes.append(request)

    hooks = {"request": [count_refreshes]}
    async with httpx.AsyncClient(timeout=10, headers=a_client_address(), event_hooks=hooks) as http:
        account, player_id = await register(http, base)
        first_refresh = account.refresh_token
        account.access_token = "expired"  # refused like an expired one: 401

        session = await account.request("GET", f"{base}/api/v1/auth/session")
        assert session.status_code == 200
        assert session.json()["player_id"] == player_id
        assert account.refresh_token != first_refresh  # rotated
        assert len(refreshes) == 1

        # Many requests refused at once: one refresh between them, and the login stays valid.
        account.access_token = "expired"
        answers = await asyncio.gather(*(account.request("GET", f"{base}/api/v1/auth/session") for _ in range(6)))
        assert [a.status_code for a in answers] == [200] * 6
        assert len(refreshes) == 2
        account.access_token = "expired"
        assert (await account.request("GET", f"{base}/api/v1/auth/session")).status_code == 200


async def test_a_login_that_can_no_longer_be_renewed_gets_its_401_back(platform: dict[str, str]) -> None:
    base = platform["gateway"]
    async with httpx.AsyncClient(timeout=10, headers=a_client_address()) as http:
        account, _ = await register(http, base)
        logout = await http.post(f"{base}/api/v1/auth/logout", json={"refresh_token": account.refresh_token})
        assert logout.status_code == 204
        account.access_token = "expired"
        answer = await account.request("GET", f"{base}/api/v1/auth/session")
        assert answer.status_code == 401
        assert account.access_token == "expired"
