"""Races on the player service, over real HTTP against a running process (granian).

The in-process test client runs requests one after another on its loop; only a real server
serves them concurrently, with separate database connections, as production does.
"""

from __future__ import annotations

import asyncio
import uuid

import httpx


async def test_parallel_identical_registrations_give_one_account_and_409s(platform: dict[str, str]) -> None:
    name = "race_" + uuid.uuid4().hex[:8]
    # Each spelling is the same identity once NFKC-normalised and case folded.
    spellings = [name, name.upper(), "".join(chr(ord(c) + 0xFEE0) for c in name)]
    async with httpx.AsyncClient(base_url=platform["player"], timeout=30) as player:
        answers = await asyncio.gather(
            *(
                player.post(
                    "/api/v1/auth/register",
                    json={
                        "username": spellings[n % 3],
                        "email": f"{spellings[n % 3]}@example.com",
                        "password": "a race nobody wins twice",
                    },
                )
                for n in range(10)
            )
        )
        statuses = sorted(answer.status_code for answer in answers)
        assert statuses == [201] + [409] * 9, [(a.status_code, a.text) for a in answers]
        for answer in answers:
            assert answer.headers["content-type"].startswith(
                "application/json" if answer.status_code == 201 else "application/problem+json"
            )
        login = await player.post(
            "/api/v1/auth/login", json={"login": spellings[2], "password": "a race nobody wins twice"}
        )
        assert login.status_code == 200, login.text
