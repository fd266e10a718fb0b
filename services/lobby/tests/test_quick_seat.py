"""Quick seat and waiting lists against the real wallet, Postgres and Redis: the fullest table first, a
line per stake, offers that hold a seat until they expire, and money through the one sit-down saga."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import httpx
import pytest
import websockets
from litestar.testing import AsyncTestClient
from lobby_support import Ledger, LobbyProcess, bearer, new_table
from quick_seat_support import entries, eventually, funded, offer_of, quick_seat, stakes
from redis.asyncio import Redis

FUNDS = 100_000


async def test_quick_seat_fills_the_fullest_table_then_queues_and_offers_a_freed_seat(
    client: AsyncTestClient, ledger: Ledger
) -> None:
    small, big = stakes()
    buy_in = 50 * big
    full = await new_table(client, small_blind=str(small), big_blind=str(big), seats=2, action_clock_s=1, time_bank_s=0)
    empty = await new_table(client, small_blind=str(small), big_blind=str(big), seats=2)
    private = await new_table(client, small_blind=str(small), big_blind=str(big), seats=2, private=True)
    p = await funded(ledger, [str(uuid.uuid4()) for _ in range(7)], FUNDS)
    sat = await client.post(
        f"/api/v1/tables/{full['id']}/seats", json={"seat": 0, "buy_in": str(buy_in)}, headers=bearer(p[0])
    )
    assert sat.status_code == 201, sat.text

    # The fullest table first; then the other; never the private one; then the line, in order.
    answers = [await quick_seat(client, player, small, big, 2, buy_in) for player in p[1:6]]
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    bodies = [a.json() for a in answers]
    assert [b["status"] for b in bodies] == ["seated", "seated", "seated", "waiting", "waiting"]
    assert [b["table_id"] for b in bodies[:3]] == [full["id"], empty["id"], empty["id"]]
    assert private["id"] not in [b["table_id"] for b in bodies]
    assert bodies[1]["seat"]["stack"] == str(buy_in)
    assert await ledger.player_balance(p[1]) == FUNDS - buy_in
    assert [(b["entry"]["position"], b["entry"]["waiting"]) for b in bodies[3:]] == [(1, 1), (2, 2)]
    assert bodies[3]["entry"]["buy_in"] == str(buy_in)

    # Asked again: the same answers (one seat, one place in line), and the list as the player sees it.
    again = (await quick_seat(client, p[5], small, big, 2, buy_in)).json()
    assert again["entry"]["id"] == bodies[4]["entry"]["id"]
    assert (again["status"], again["entry"]["position"]) == ("waiting", 2)
    seated_again = (await quick_seat(client, p[1], small, big, 2, buy_in)).json()
    assert (seated_again["status"], seated_again["table_id"]) == ("seated", full["id"])
    assert await ledger.player_balance(p[1]) == FUNDS - buy_in
    mine = await entries(client, p[5])
    assert [(e["id"], e["status"], e["position"], e["offer"]) for e in mine] == [
        (bodies[4]["entry"]["id"], "waiting", 2, None)
    ]

    # A seat is freed (a leave, after the hand if one runs): offered to the first in line, held for them.
    left = await client.delete(f"/api/v1/tables/{full['id']}/seats/me", headers=bearer(p[0]))
    assert left.status_code == 200, left.text
    offer = await offer_of(client, p[4])
    assert (offer["table_id"], offer["seat"]) == (full["id"], 0)
    assert [(e["status"], e["position"]) for e in await entries(client, p[5])] == [("waiting", 1)]
    taken = await client.post(
        f"/api/v1/tables/{full['id']}/seats", json={"seat": 0, "buy_in": str(buy_in)}, headers=bearer(p[6])
    )
    assert taken.status_code == 409, taken.text
    not_mine = await client.post(f"/api/v1/seat-offers/{offer['id']}/accept", json={}, headers=bearer(p[5]))
    assert not_mine.status_code == 404

    # Taken by sitting down with the offer: the buy-in asked for, once.
    accepted = await client.post(f"/api/v1/seat-offers/{offer['id']}/accept", json={}, headers=bearer(p[4]))
    assert accepted.status_code == 201, accepted.text
    assert (accepted.json()["seat"], accepted.json()["stack"]) == (0, str(buy_in))
    twice = await client.post(f"/api/v1/seat-offers/{offer['id']}/accept", json={}, headers=bearer(p[4]))
    assert twice.status_code == 409
    assert twice.headers["content-type"].startswith("application/problem+json")
    assert await ledger.player_balance(p[4]) == FUNDS - buy_in
    assert await entries(client, p[4]) == []

    # Leaving the line: once, then no second effect.
    entry_id = bodies[4]["entry"]["id"]
    gone = await client.delete(f"/api/v1/waiting-lists/me/{entry_id}", headers=bearer(p[5]))
    assert (gone.status_code, gone.json()["status"]) == (200, "left")
    assert await entries(client, p[5]) == []
    leave = f"/api/v1/waiting-lists/me/{entry_id}"
    assert (await client.delete(leave, headers=bearer(p[5]))).json()["status"] == "left"
    assert (await client.delete(leave, headers=bearer(p[4]))).status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        {"small_blind": "1", "big_blind": "2", "seats": 6},
        {"small_blind": "1", "big_blind": "2", "seats": 11, "buy_in": "100"},
        {"small_blind": "0", "big_blind": "2", "seats": 6, "buy_in": "100"},
        {"small_blind": "1", "big_blind": "2", "seats": 6, "buy_in": "1e3"},
        {"small_blind": "1", "big_blind": "2", "seats": 6, "buy_in": 100},
        {"small_blind": "1", "big_blind": "2", "seats": 6, "buy_in": "100", "table": "any"},
    ],
)
async def test_bad_quick_seat_requests_are_problems(client: AsyncTestClient, body: dict[str, Any]) -> None:
    response = await client.post("/api/v1/quick-seat", json=body, headers=bearer(str(uuid.uuid4())))
    assert 400 <= response.status_code < 500, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    anonymous = await client.post("/api/v1/quick-seat", json=body)
    assert anonymous.status_code == 401


async def test_a_refused_buy_in_frees_the_held_seat(client: AsyncTestClient, ledger: Ledger) -> None:
    small, big = stakes()
    table = await new_table(client, small_blind=str(small), big_blind=str(big), seats=2)
    poor, rich = str(uuid.uuid4()), str(uuid.uuid4())
    await ledger.fund(poor, 10)
    await ledger.fund(rich, FUNDS)
    refused = await quick_seat(client, poor, small, big, 2, 50 * big)
    assert refused.status_code == 409, refused.text
    assert refused.json()["type"] == "urn:tablium:problem:buy-in-refused"
    assert await ledger.player_balance(poor) == 10
    seated = (await quick_seat(client, rich, small, big, 2, 50 * big)).json()
    assert (seated["status"], seated["table_id"]) == ("seated", table["id"])


@pytest.fixture(scope="module")
async def lobby(start_lobby: Any) -> LobbyProcess:
    # Offers expire fast here, and lists are looked at often: the expiry test waits on them.
    process: LobbyProcess = await start_lobby(offer_ttl_s="1.5", matching_interval_s="0.2")
    return process


async def test_an_offer_not_taken_passes_to_the_next_and_is_announced_on_the_socket(
    lobby: LobbyProcess, ledger: Ledger
) -> None:
    small, big = stakes()
    buy_in = 50 * big
    async with httpx.AsyncClient(base_url=lobby.url, timeout=30) as http:
        blinds = {"small_blind": str(small), "big_blind": str(big)}
        table = await new_table(http, **blinds, seats=2, action_clock_s=1, time_bank_s=0)
        p = await funded(ledger, [str(uuid.uuid4()) for _ in range(4)], FUNDS)
        answers = [(await quick_seat(http, player, small, big, 2, buy_in)).json() for player in p]
        assert [a["status"] for a in answers] == ["seated", "seated", "waiting", "waiting"]
        ws = f"{lobby.ws_url}/api/v1/tables/{table['id']}/ws"
        async with websockets.connect(ws, additional_headers=bearer(p[2])) as socket:
            announced: list[dict[str, Any]] = []

            async def listen() -> None:
                async for raw in socket:
                    message = json.loads(raw)
                    if message["type"] == "seat-offer":
                        announced.append(message)
                        return

            listening = asyncio.create_task(listen())
            await asyncio.sleep(0)
            left = await http.delete(f"/api/v1/tables/{table['id']}/seats/me", headers=bearer(p[0]))
            assert left.status_code == 200, left.text
            offer = await offer_of(http, p[2])
            await asyncio.wait_for(listening, 30)
        assert announced[0]["offerId"] == offer["id"]
        assert (announced[0]["tableId"], announced[0]["seat"]) == (table["id"], offer["seat"])
        assert announced[0]["bigBlind"] == str(big)

        # Not taken: it expires and passes to the next; the first is out of the line.
        passed = await offer_of(http, p[3])
        assert (passed["table_id"], passed["seat"]) == (offer["table_id"], offer["seat"])
        assert await entries(http, p[2]) == []
        late = await http.post(f"/api/v1/seat-offers/{offer['id']}/accept", json={}, headers=bearer(p[2]))
        assert late.status_code == 409, late.text
        taken = await http.post(
            f"/api/v1/seat-offers/{passed['id']}/accept", json={"buy_in": str(40 * big)}, headers=bearer(p[3])
        )
        assert taken.status_code == 201, taken.text
        assert await ledger.player_balance(p[3]) == FUNDS - 40 * big
        assert await ledger.player_balance(p[2]) == FUNDS


async def test_a_new_table_is_offered_to_the_line(lobby: LobbyProcess, ledger: Ledger) -> None:
    small, big = stakes()
    async with httpx.AsyncClient(base_url=lobby.url, timeout=30) as http:
        player = (await funded(ledger, [str(uuid.uuid4())], FUNDS))[0]
        waiting = (await quick_seat(http, player, small, big, 6, 50 * big)).json()
        assert (waiting["status"], waiting["entry"]["position"]) == ("waiting", 1)
        table = await new_table(http, small_blind=str(small), big_blind=str(big), seats=6)
        offer = await offer_of(http, player)
        assert offer["table_id"] == table["id"]
        taken = await http.post(f"/api/v1/seat-offers/{offer['id']}/accept", json={}, headers=bearer(player))
        assert taken.status_code == 201, taken.text


async def test_redis_holds_a_copy_of_the_lists_rebuilt_from_postgres(
    lobby: LobbyProcess, start_lobby: Any, ledger: Ledger, run_id: str
) -> None:
    small, big = stakes()
    list_key = f"nlhe:{small}:{big}:0:2"
    redis = Redis.from_url("redis://127.0.0.1:6379/0")
    try:
        async with httpx.AsyncClient(base_url=lobby.url, timeout=30) as http:
            table = await new_table(http, small_blind=str(small), big_blind=str(big), seats=2)
            p = await funded(ledger, [str(uuid.uuid4()) for _ in range(4)], FUNDS)
            for player in p:
                await quick_seat(http, player, small, big, 2, 50 * big)
        prefix = f"test-{run_id}:lobby"

        async def copy(namespace: str) -> tuple[list[tuple[bytes, float]], list[bytes]] | None:
            tables = await redis.zrange(f"{namespace}:registry:{list_key}", 0, -1, withscores=True)
            line = await redis.zrange(f"{namespace}:waiting:{list_key}", 0, -1)
            return (tables, line) if tables and line else None

        expected = ([(table["id"].encode(), 0.0)], [p[2].encode(), p[3].encode()])
        assert await copy(prefix) == expected
        # Lost (Redis flushed, say): the next pass writes it again from Postgres.
        await redis.delete(f"{prefix}:registry:{list_key}", f"{prefix}:waiting:{list_key}")
        assert await eventually(lambda: copy(prefix), "the copy rewritten") == expected
        # A new instance (its own namespace here) builds its copy from Postgres at start.
        other = await start_lobby(database_url=lobby.database_url, redis_namespace=f"test-{run_id}-rebuilt")
        assert await eventually(lambda: copy(f"test-{run_id}-rebuilt:lobby"), "the copy rebuilt") == expected
        other.kill()
    finally:
        await redis.aclose()


async def test_the_largest_amounts_are_a_place_in_line_not_an_error(client: AsyncTestClient) -> None:
    top = str(2**128 - 1)
    body = {"small_blind": top, "big_blind": top, "ante": top, "seats": 10, "buy_in": top}
    response = await client.post("/api/v1/quick-seat", json=body, headers=bearer(str(uuid.uuid4())))
    assert response.status_code == 200, response.text
    assert (response.json()["status"], response.json()["entry"]["buy_in"]) == ("waiting", top)


async def test_an_offer_reaches_the_players_socket_on_another_instance(
    lobby: LobbyProcess, start_lobby: Any, ledger: Ledger
) -> None:
    small, big = stakes()
    other: LobbyProcess = await start_lobby(database_url=lobby.database_url)
    try:
        async with httpx.AsyncClient(base_url=lobby.url, timeout=30) as http:
            blinds = {"small_blind": str(small), "big_blind": str(big)}
            table = await new_table(http, **blinds, seats=2, action_clock_s=1, time_bank_s=0)
            first, second, waiter = await funded(ledger, [str(uuid.uuid4()) for _ in range(3)], FUNDS)
            for player in (first, second, waiter):
                await quick_seat(http, player, small, big, 2, 50 * big)
            # The waiting player watches the table through the other instance; the seat frees on this one.
            ws = f"{other.ws_url}/api/v1/tables/{table['id']}/ws"
            async with websockets.connect(ws, additional_headers=bearer(waiter)) as socket:

                async def offered() -> dict[str, Any]:
                    async for raw in socket:
                        message: dict[str, Any] = json.loads(raw)
                        if message["type"] == "seat-offer":
                            return message
                    raise AssertionError("socket closed")

                listening = asyncio.create_task(offered())
                left = await http.delete(f"/api/v1/tables/{table['id']}/seats/me", headers=bearer(first))
                assert left.status_code == 200, left.text
                # (Offers made by the first instance expire fast: the announcement is what is checked.)
                announced = await asyncio.wait_for(listening, 60)
            assert (announced["tableId"], announced["seat"], announced["bigBlind"]) == (table["id"], 0, str(big))
    finally:
        other.kill()
