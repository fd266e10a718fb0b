"""Tables and seats through the lobby's REST API, against the real wallet: every chip accounted for."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from litestar.testing import AsyncTestClient
from lobby_support import ADMIN, Ledger, LobbyProcess, bearer, new_table


async def test_an_admin_opens_a_table_and_anyone_lists_and_reads_it(client: AsyncTestClient) -> None:
    table = await new_table(client, name="Low stakes", small_blind="5", big_blind="10", ante="1", seats=9)
    assert table["status"] == "open"
    assert (table["small_blind"], table["big_blind"], table["ante"]) == ("5", "10", "1")
    assert (table["min_buy_in"], table["max_buy_in"], table["free_seats"]) == ("400", "1000", 9)
    private = await new_table(client, name="Friends", small_blind="5", big_blind="10", private=True)

    listed = (await client.get("/api/v1/tables", params={"big_blind": "10", "private": "false"})).json()
    assert table["id"] in [t["id"] for t in listed]
    assert private["id"] not in [t["id"] for t in listed]
    listed = (await client.get("/api/v1/tables", params={"private": "true"})).json()
    assert private["id"] in [t["id"] for t in listed]
    assert (await client.get("/api/v1/tables", params={"big_blind": "11"})).json() == [] or all(
        t["big_blind"] == "11" for t in (await client.get("/api/v1/tables", params={"big_blind": "11"})).json()
    )
    one = await client.get(f"/api/v1/tables/{table['id']}")
    assert one.status_code == 200
    assert one.json()["name"] == "Low stakes"
    missing = await client.get(f"/api/v1/tables/{uuid.uuid4()}")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize(
    ("change", "status"),
    [
        ({"seats": 11}, 400),
        ({"seats": 1}, 400),
        ({"small_blind": "3", "big_blind": "2"}, 422),
        ({"small_blind": 1}, 400),
        ({"big_blind": "1e3"}, 400),
        ({"min_buy_in_bb": 200, "max_buy_in_bb": 100}, 422),
        ({"colour": "green"}, 400),
        ({"name": "bad\x00name"}, 400),
        ({"big_blind": "340282366920938463463374607431768211456"}, 400),
        ({"big_blind": "10000000000000000000000", "small_blind": "1"}, 422),
    ],
)
async def test_bad_table_configurations_are_refused(
    client: AsyncTestClient, change: dict[str, Any], status: int
) -> None:
    body = {"name": "x", "small_blind": "1", "big_blind": "2", **change}
    response = await client.post("/api/v1/tables", json=body, headers=ADMIN)
    assert response.status_code in (status, 422 if status == 400 else status), response.text
    assert 400 <= response.status_code < 500
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_only_admins_open_and_close_tables(client: AsyncTestClient) -> None:
    body = {"name": "x", "small_blind": "1", "big_blind": "2"}
    assert (await client.post("/api/v1/tables", json=body)).status_code == 401
    assert (await client.post("/api/v1/tables", json=body, headers=bearer(str(uuid.uuid4())))).status_code == 403
    table = await new_table(client)
    closing = await client.post(f"/api/v1/tables/{table['id']}/close", headers=bearer(str(uuid.uuid4())))
    assert closing.status_code == 403


async def test_sit_down_top_up_and_leave_move_money_exactly_once(client: AsyncTestClient, ledger: Ledger) -> None:
    table = await new_table(client, small_blind="1", big_blind="2", min_buy_in_bb=20, max_buy_in_bb=100)
    escrow = await ledger.account(f"table:{table['id']}", "table_escrow")
    player = str(uuid.uuid4())
    await ledger.fund(player, 1_000)
    me = bearer(player)
    seats = f"/api/v1/tables/{table['id']}/seats"

    sat = await client.post(seats, json={"seat": 3, "buy_in": "150"}, headers=me)
    assert sat.status_code == 201, sat.text
    assert sat.json() | {"player_id": player} == sat.json()
    assert (sat.json()["seat"], sat.json()["stack"], sat.json()["status"]) == (3, "150", "seated")
    assert await ledger.player_balance(player) == 850
    assert await ledger.balance(escrow) == 150

    again = await client.post(seats, json={"seat": 4, "buy_in": "50"}, headers=me)
    assert again.status_code == 409, "one seat per player per table"
    taken = await client.post(seats, json={"seat": 3, "buy_in": "50"}, headers=bearer(str(uuid.uuid4())))
    assert taken.status_code == 409
    for body in ({"seat": 2, "buy_in": "39"}, {"seat": 2, "buy_in": "201"}, {"seat": 6, "buy_in": "50"}):
        refused = await client.post(seats, json=body, headers=bearer(str(uuid.uuid4())))
        assert refused.status_code == 422, (body, refused.text)

    too_much = await client.post(f"{seats}/me/top-up", json={"amount": "51"}, headers=me)
    assert too_much.status_code == 422
    topped = await client.post(f"{seats}/me/top-up", json={"amount": "50"}, headers=me)
    assert topped.status_code == 200, topped.text
    assert topped.json()["stack"] == "200"
    assert await ledger.player_balance(player) == 800
    assert await ledger.balance(escrow) == 200

    view = (await client.get(f"/api/v1/tables/{table['id']}")).json()
    assert [(p["seat"], p["stack"]) for p in view["players"]] == [(3, "200")]
    assert view["free_seats"] == 5

    left = await client.delete(f"{seats}/me", headers=me)
    assert left.status_code == 200, left.text
    assert left.json() == {"status": "left", "cashed_out": "200"}
    repeated = await client.delete(f"{seats}/me", headers=me)
    assert repeated.json() == {"status": "left", "cashed_out": "0"}
    assert await ledger.player_balance(player) == 1_000
    assert await ledger.balance(escrow) == 0
    assert (await client.get(f"/api/v1/tables/{table['id']}")).json()["players"] == []


async def test_a_buy_in_the_wallet_refuses_frees_the_seat(client: AsyncTestClient, ledger: Ledger) -> None:
    table = await new_table(client)
    player = str(uuid.uuid4())
    await ledger.fund(player, 90)
    me = bearer(player)
    seats = f"/api/v1/tables/{table['id']}/seats"
    refused = await client.post(seats, json={"seat": 0, "buy_in": "100"}, headers=me)
    assert refused.status_code == 409, refused.text
    assert refused.json()["type"] == "urn:tablium:problem:buy-in-refused"
    assert await ledger.player_balance(player) == 90
    sat = await client.post(seats, json={"seat": 0, "buy_in": "90"}, headers=me)
    assert sat.status_code == 201, sat.text
    assert await ledger.player_balance(player) == 0


async def test_a_top_up_the_wallet_refuses_leaves_the_seat_as_it_was(client: AsyncTestClient, ledger: Ledger) -> None:
    # Refused on the lanes in one statement (ADR 0012, fifth pass): the movement alone is marked refused.
    table = await new_table(client, small_blind="1", big_blind="2", min_buy_in_bb=20, max_buy_in_bb=100)
    player = str(uuid.uuid4())
    await ledger.fund(player, 100)
    me = bearer(player)
    seats = f"/api/v1/tables/{table['id']}/seats"
    assert (await client.post(seats, json={"seat": 1, "buy_in": "60"}, headers=me)).status_code == 201
    refused = await client.post(f"{seats}/me/top-up", json={"amount": "50"}, headers=me)
    assert refused.status_code == 409, refused.text
    assert refused.json()["type"] == "urn:tablium:problem:buy-in-refused"
    view = (await client.get(f"/api/v1/tables/{table['id']}")).json()
    assert [(p["seat"], p["stack"]) for p in view["players"]] == [(1, "60")]
    # Nothing left pending: the next top-up is taken.
    topped = await client.post(f"{seats}/me/top-up", json={"amount": "40"}, headers=me)
    assert topped.status_code == 200, topped.text
    assert topped.json()["stack"] == "100"
    assert await ledger.player_balance(player) == 0


async def test_closing_a_table_cashes_everyone_out(client: AsyncTestClient, ledger: Ledger) -> None:
    # Two seated players start a hand nobody plays: the clock folds it, then the table closes.
    table = await new_table(client, action_clock_s=1, time_bank_s=0)
    players = [str(uuid.uuid4()) for _ in range(3)]
    for seat, player in enumerate(players):
        await ledger.fund(player, 500)
        response = await client.post(
            f"/api/v1/tables/{table['id']}/seats", json={"seat": seat, "buy_in": "100"}, headers=bearer(player)
        )
        assert response.status_code == 201, response.text
    closed = await client.post(f"/api/v1/tables/{table['id']}/close", headers=ADMIN)
    assert closed.status_code == 200, closed.text
    assert closed.json()["status"] in ("closing", "closed")
    for _ in range(100):
        view = (await client.get(f"/api/v1/tables/{table['id']}")).json()
        if view["status"] == "closed":
            break
        await asyncio.sleep(0.1)
    assert view["status"] == "closed"
    assert view["players"] == []
    # Blinds may have changed hands (no flop, no rake): every chip is back in a player's account.
    assert sum([await ledger.player_balance(player) for player in players]) == 1_500
    assert await ledger.balance(await ledger.account(f"table:{table['id']}", "table_escrow")) == 0
    late = await client.post(
        f"/api/v1/tables/{table['id']}/seats", json={"seat": 5, "buy_in": "100"}, headers=bearer(players[0])
    )
    assert late.status_code == 409


async def test_parallel_identical_sit_downs_and_leaves_over_http_have_one_effect(
    start_lobby: Any, ledger: Ledger
) -> None:
    lobby: LobbyProcess = await start_lobby()
    async with httpx.AsyncClient(base_url=lobby.url, timeout=30) as http:
        table = await new_table(http, action_clock_s=1, time_bank_s=0)
        player = str(uuid.uuid4())
        await ledger.fund(player, 1_000)
        me = bearer(player)
        seats = f"/api/v1/tables/{table['id']}/seats"
        answers = await asyncio.gather(
            *(http.post(seats, json={"seat": 1, "buy_in": "100"}, headers=me) for _ in range(8))
        )
        codes = sorted(a.status_code for a in answers)
        assert codes == [201] + [409] * 7, [a.text for a in answers]
        assert await ledger.player_balance(player) == 900

        # Different seats at once: still one seat per player.
        other = str(uuid.uuid4())
        await ledger.fund(other, 1_000)
        answers = await asyncio.gather(
            *(http.post(seats, json={"seat": s, "buy_in": "100"}, headers=bearer(other)) for s in range(2, 6))
        )
        assert sorted(a.status_code for a in answers) == [201, 409, 409, 409]
        assert await ledger.player_balance(other) == 900

        leaves = await asyncio.gather(*(http.delete(f"{seats}/me", headers=me) for _ in range(8)))
        assert all(a.status_code == 200 for a in leaves), [a.text for a in leaves]
        # Each answer reports the one cash-out (pending or done); the balance shows it happened once.
        assert {a.json()["cashed_out"] for a in leaves} <= {"100", "0"}
        escrow = await ledger.account(f"table:{table['id']}", "table_escrow")
        for _ in range(100):  # a hand may be running: the cash-out follows it (the clock folds for idle players)
            view = (await http.get(f"/api/v1/tables/{table['id']}")).json()
            if [p["player_id"] for p in view["players"]] == [other]:
                break
            await asyncio.sleep(0.1)
        assert [p["player_id"] for p in view["players"]] == [other]
        # Cashed out once: the escrow holds exactly the chips of the player still seated, and nothing was lost.
        assert await ledger.balance(escrow) == int(view["players"][0]["stack"])
        total = await ledger.player_balance(player) + await ledger.player_balance(other) + await ledger.balance(escrow)
        assert total == 2_000


async def test_lobby_stats_count_tables_and_seats(client: AsyncTestClient, ledger: Ledger) -> None:
    before = (await client.get("/api/v1/lobby/stats")).json()
    table = await new_table(client, small_blind="3", big_blind="6")
    player = str(uuid.uuid4())
    await ledger.fund(player, 1_000)
    sat = await client.post(
        f"/api/v1/tables/{table['id']}/seats", json={"seat": 0, "buy_in": "300"}, headers=bearer(player)
    )
    assert sat.status_code == 201, sat.text
    after = (await client.get("/api/v1/lobby/stats")).json()
    assert after["tables_open"] == before["tables_open"] + 1
    assert after["seated_players"] == before["seated_players"] + 1
    metrics = (await client.get("/metrics")).text
    assert "tablium_lobby_seated_players" in metrics
    await client.delete(f"/api/v1/tables/{table['id']}/seats/me", headers=bearer(player))


async def test_the_list_shows_each_table_as_read_alone_with_its_free_seats_fullest_first(
    client: AsyncTestClient, ledger: Ledger
) -> None:
    # Stakes of their own, so other tests' tables don't share the filtered list.
    stakes = {"small_blind": "7", "big_blind": "14", "ante": "2", "rake_cap": "30"}
    empty = await new_table(client, name='Empty \u2660 "quoted"', seats=6, **stakes)
    busy = await new_table(client, name="Busy", seats=6, **stakes)
    # One player: no hand starts, so nothing changes between the list and each table read alone.
    player = str(uuid.uuid4())
    await ledger.fund(player, 10_000)
    sat = await client.post(
        f"/api/v1/tables/{busy['id']}/seats", json={"seat": 4, "buy_in": "700"}, headers=bearer(player)
    )
    assert sat.status_code == 201, sat.text

    listed = await client.get("/api/v1/tables", params={"big_blind": "14", "small_blind": "7"})
    assert listed.status_code == 200
    assert listed.headers["content-type"].startswith("application/json")
    assert [t["id"] for t in listed.json()] == [busy["id"], empty["id"]], "fullest first"
    for entry in listed.json():
        alone = (await client.get(f"/api/v1/tables/{entry['id']}")).json()
        assert entry == alone | {"players": []}, "the same fields and values as the table read alone"
    assert [t["free_seats"] for t in listed.json()] == [5, 6]
    roomy = await client.get("/api/v1/tables", params={"big_blind": "14", "min_free_seats": 6})
    assert [t["id"] for t in roomy.json()] == [empty["id"]]
    assert (await client.get("/api/v1/tables", params={"big_blind": "14", "offset": 2})).json() == []


async def _chunks(total: int, size: int = 64 * 1024) -> Any:
    for _ in range(total // size):
        yield b" " * size


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_an_oversized_body_gets_its_413_over_a_real_socket_and_the_connection_stays_usable(
    start_lobby: Any, chunked: bool
) -> None:
    """Served as in production (granian): a client still writing a body over the kit's limit reads the
    413, not a connection reset (a server closing on unread data resets the connection, and the client's
    kernel drops the 413 with it), and its next request on the same client works."""
    lobby: LobbyProcess = await start_lobby()
    seats = f"/api/v1/tables/{uuid.uuid4()}/seats"
    headers = {**bearer(str(uuid.uuid4())), "Content-Type": "application/json"}  # authenticated: the body is read
    async with httpx.AsyncClient(base_url=lobby.url, timeout=30) as http:
        for size in (1_000_000, 4_000_000, 4_000_000):
            content = _chunks(size) if chunked else b"[]" * (size // 2)
            too_big = await http.post(seats, content=content, headers=headers)
            assert too_big.status_code == 413, too_big.text
            assert too_big.headers["content-type"].startswith("application/problem+json")
            assert too_big.json()["status"] == 413
            after = await http.get("/api/v1/tables")
            assert after.status_code == 200, after.text
