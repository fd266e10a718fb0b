"""Races that only a real server shows: parallel identical requests over HTTP against a running service."""

from __future__ import annotations

import asyncio
import uuid

import httpx


async def test_parallel_identical_registrations_give_one_account_and_conflicts(platform: dict[str, str]) -> None:
    name = "race_" + uuid.uuid4().hex[:8]
    user = {"username": name, "email": f"{name}@example.com", "password": "a racing password"}
    async with httpx.AsyncClient(base_url=platform["player"], timeout=30) as player:
        responses = await asyncio.gather(*(player.post("/api/v1/auth/register", json=user) for _ in range(10)))
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [201] + [409] * 9, [response.text for response in responses]
    for response in responses:
        if response.status_code == 409:
            assert response.headers["content-type"] == "application/problem+json"
            assert response.json()["status"] == 409
