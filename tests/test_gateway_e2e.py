"""A player's first minutes, through the development gateway over real HTTP."""

from __future__ import annotations

import random
import uuid

import httpx
import pytest


async def test_register_login_profile_through_the_gateway(platform: dict[str, str]) -> None:
    name = "e2e_" + uuid.uuid4().hex[:8]
    async with httpx.AsyncClient(base_url=platform["gateway"], timeout=10) as gateway:
        created = await gateway.post(
            "/api/v1/auth/register",
            json={"username": name, "email": f"{name}@example.com", "password": "through the gateway"},
        )
        assert created.status_code == 201, created.text
        assert created.headers["x-request-id"]  # correlation id, end to end

        login = await gateway.post("/api/v1/auth/login", json={"login": name, "password": "through the gateway"})
        assert login.status_code == 200, login.text
        tokens = login.json()

        me = await gateway.get("/api/v1/players/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})
        assert me.status_code == 200, me.text
        assert me.json()["username"] == name

        # The gateway itself refuses private routes without a token (Kong's jwt plugin)...
        anonymous = await gateway.get("/api/v1/players/me")
        assert anonymous.status_code == 401
        # ...public profiles pass...
        public = await gateway.get(f"/api/v1/players/{me.json()['id']}")
        assert public.status_code == 200
        assert "email" not in public.json()
        # ...and internal paths are never routed.
        assert (await gateway.get("/internal/anything")).status_code == 404

        refreshed = await gateway.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
        assert refreshed.status_code == 200


@pytest.mark.parametrize("header", ["X-Forwarded-For"])
async def test_login_rate_limit_counts_the_real_client_not_the_gateway(platform: dict[str, str], header: str) -> None:
    """Behind the gateway every request comes from 127.0.0.1; the service must see each real client."""
    async with httpx.AsyncClient(base_url=platform["gateway"], timeout=10) as gateway:
        # Fresh addresses each run: the limiter's counters live in Redis across runs.
        attacker_ip, other_ip = (f"198.18.{random.randrange(256)}.{random.randrange(1, 255)}" for _ in range(2))
        attacker = {header: attacker_ip}
        statuses = [
            (
                await gateway.post(
                    "/api/v1/auth/login", json={"login": f"x_nobody{attempt}", "password": "x" * 12}, headers=attacker
                )
            ).status_code
            for attempt in range(9)
        ]
        assert statuses[:8] == [401] * 8
        assert statuses[8] == 429
        # A different client, through the same gateway, still gets through to the password check.
        other = await gateway.post(
            "/api/v1/auth/login", json={"login": "x_other", "password": "x" * 12}, headers={header: other_ip}
        )
        assert other.status_code == 401
