"""What a client gets from the real processes: the gateway's refusals look like the services' errors,
and tokens are never cached on the way."""

from __future__ import annotations

import uuid

import httpx


async def test_gateway_refusals_are_problem_json_and_tokens_are_not_stored(platform: dict[str, str]) -> None:
    async with httpx.AsyncClient(base_url=platform["gateway"], timeout=10) as gateway:
        for path, status in (("/internal/anything", 404), ("/api/v1/players/me", 401)):
            refused = await gateway.get(path)
            assert refused.status_code == status
            assert refused.headers["content-type"] == "application/problem+json"
            assert refused.headers["x-content-type-options"] == "nosniff"
            assert refused.json()["status"] == status

        name = "nostore_" + uuid.uuid4().hex[:8]
        user = {"username": name, "email": f"{name}@example.com", "password": "kept by nobody at all"}
        assert (await gateway.post("/api/v1/auth/register", json=user)).status_code == 201
        login = await gateway.post("/api/v1/auth/login", json={"login": name, "password": user["password"]})
        assert login.status_code == 200, login.text
        assert login.headers["cache-control"] == "no-store"
        assert login.headers["pragma"] == "no-cache"
        assert login.headers.get_list("x-content-type-options") == ["nosniff"]
