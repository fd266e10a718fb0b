"""Helpers of the quick-seat tests: unique stakes per test (lists are per stake), REST calls, polling."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from lobby_support import Ledger, bearer

T = TypeVar("T")
_blinds = itertools.count(101)


def stakes() -> tuple[int, int]:
    """Blinds no other test uses: each test has waiting lists of its own."""
    small = next(_blinds) * 7
    return small, 2 * small


async def quick_seat(http: Any, player: str, small: int, big: int, seats: int, buy_in: int) -> Any:
    body = {"small_blind": str(small), "big_blind": str(big), "seats": seats, "buy_in": str(buy_in)}
    return await http.post("/api/v1/quick-seat", json=body, headers=bearer(player))


async def entries(http: Any, player: str) -> list[dict[str, Any]]:
    response = await http.get("/api/v1/waiting-lists/me", headers=bearer(player))
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()
    return found


async def eventually(probe: Callable[[], Awaitable[T | None]], what: str, tries: int = 400) -> T:
    """Poll until ``probe`` returns something (no timed assertion: a bounded number of looks)."""
    for _ in range(tries):
        found = await probe()
        if found:
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"never: {what}")


async def offer_of(http: Any, player: str) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        mine = await entries(http, player)
        return next((e["offer"] for e in mine if e["offer"] is not None), None)

    return await eventually(probe, f"an offer to {player}")


async def funded(ledger: Ledger, players: list[str], amount: int) -> list[str]:
    for player in players:
        await ledger.fund(player, amount)
    return players
