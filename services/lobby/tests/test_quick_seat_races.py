"""Quick seat under races, over real HTTP against a lobby process: parallel identical requests have one
effect, two players for one seat end one seated and one waiting, an offer taken twice seats once."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from typing import Any

import httpx
import pytest
from lobby_support import Ledger, LobbyProcess, bearer, new_table
from quick_seat_support import entries, funded, offer_of, quick_seat, stakes

FUNDS = 100_000


@pytest.fixture(scope="module")
async def http(start_lobby: Any) -> Any:
    lobby: LobbyProcess = await start_lobby()
    async with httpx.AsyncClient(base_url=lobby.url, timeout=60) as client:
        yield client


async def seated_players(http: httpx.AsyncClient, table_id: str) -> list[str]:
    view = (await http.get(f"/api/v1/tables/{table_id}")).json()
    return [p["player_id"] for p in view["players"]]


async def test_parallel_identical_quick_seats_take_one_seat(http: httpx.AsyncClient, ledger: Ledger) -> None:
    small, big = stakes()
    buy_in = 50 * big
    table = await new_table(http, small_blind=str(small), big_blind=str(big), seats=6)
    await new_table(http, small_blind=str(small), big_blind=str(big), seats=6)
    [player] = await funded(ledger, [str(uuid.uuid4())], FUNDS)
    answers = await asyncio.gather(*(quick_seat(http, player, small, big, 6, buy_in) for _ in range(8)))
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    statuses = Counter(a.json()["status"] for a in answers)
    assert statuses["seated"] >= 1, statuses
    assert set(statuses) <= {"seated", "offered"}, statuses
    assert {a.json()["table_id"] for a in answers if a.json()["status"] == "seated"} == {table["id"]}
    assert await seated_players(http, table["id"]) == [player]
    assert await ledger.player_balance(player) == FUNDS - buy_in
    assert await entries(http, player) == []


async def test_parallel_identical_quick_seats_at_full_tables_make_one_entry(
    http: httpx.AsyncClient, ledger: Ledger
) -> None:
    small, big = stakes()
    buy_in = 50 * big
    await new_table(http, small_blind=str(small), big_blind=str(big), seats=2)
    first = await funded(ledger, [str(uuid.uuid4()) for _ in range(2)], FUNDS)
    for player in first:
        assert (await quick_seat(http, player, small, big, 2, buy_in)).json()["status"] == "seated"
    [player] = await funded(ledger, [str(uuid.uuid4())], FUNDS)
    answers = await asyncio.gather(*(quick_seat(http, player, small, big, 2, buy_in) for _ in range(8)))
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    assert {(a.json()["status"], a.json()["entry"]["id"], a.json()["entry"]["position"]) for a in answers} == {
        ("waiting", answers[0].json()["entry"]["id"], 1)
    }
    assert [e["position"] for e in await entries(http, player)] == [1]
    assert await ledger.player_balance(player) == FUNDS


@pytest.mark.parametrize("round_", range(3))
async def test_two_players_racing_for_the_last_seat_one_sits_one_waits(
    http: httpx.AsyncClient, ledger: Ledger, round_: int
) -> None:
    small, big = stakes()
    buy_in = 50 * big
    table = await new_table(http, small_blind=str(small), big_blind=str(big), seats=2)
    first, *racers = await funded(ledger, [str(uuid.uuid4()) for _ in range(3)], FUNDS)
    assert (await quick_seat(http, first, small, big, 2, buy_in)).json()["status"] == "seated"
    answers = await asyncio.gather(*(quick_seat(http, racer, small, big, 2, buy_in) for racer in racers))
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    assert sorted(a.json()["status"] for a in answers) == ["seated", "waiting"]
    winner = next(r for r, a in zip(racers, answers, strict=True) if a.json()["status"] == "seated")
    loser = next(r for r in racers if r != winner)
    assert sorted(await seated_players(http, table["id"])) == sorted([first, winner])
    assert [e["position"] for e in await entries(http, loser)] == [1]
    assert await ledger.player_balance(loser) == FUNDS
    assert await ledger.player_balance(winner) == FUNDS - buy_in


async def test_an_offer_taken_twice_at_once_seats_once(http: httpx.AsyncClient, ledger: Ledger) -> None:
    small, big = stakes()
    buy_in = 50 * big
    table = await new_table(http, small_blind=str(small), big_blind=str(big), seats=2, action_clock_s=1, time_bank_s=0)
    seated = await funded(ledger, [str(uuid.uuid4()) for _ in range(2)], FUNDS)
    for player in seated:
        assert (await quick_seat(http, player, small, big, 2, buy_in)).json()["status"] == "seated"
    [waiter] = await funded(ledger, [str(uuid.uuid4())], FUNDS)
    assert (await quick_seat(http, waiter, small, big, 2, buy_in)).json()["status"] == "waiting"
    # A leave while dealt in takes effect after the hand (the clock folds for the idle players).
    left = await http.delete(f"/api/v1/tables/{table['id']}/seats/me", headers=bearer(seated[0]))
    assert left.status_code == 200, left.text
    offer = await offer_of(http, waiter)
    accept = f"/api/v1/seat-offers/{offer['id']}/accept"
    answers = await asyncio.gather(*(http.post(accept, json={}, headers=bearer(waiter)) for _ in range(8)))
    assert sorted(a.status_code for a in answers) == [201] + [409] * 7, [a.text for a in answers]
    assert all(
        a.headers["content-type"].startswith("application/problem+json") for a in answers if a.status_code == 409
    )
    assert sorted(await seated_players(http, table["id"])) == sorted([seated[1], waiter])
    assert await ledger.player_balance(waiter) == FUNDS - buy_in
