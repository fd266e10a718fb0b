"""Private tables (seed 002) against a running lobby process, the real wallet, Postgres, Redis and RabbitMQ:
a player hosts, others ask to join, the host approves, rejects and kicks; repeats and races have one effect."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import httpx
import pytest
import websockets
from lobby_support import ADMIN, Ledger, LobbyProcess, bearer, user_token
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from tablium_lobby.bots import POLICIES, Bot

SETTINGS = {"name": "Friday game", "small_blind": "1", "big_blind": "2", "seats": 4, "min_buy_in_bb": 20}


@pytest.fixture(scope="module")
async def lobby(start_lobby: Any) -> LobbyProcess:
    process: LobbyProcess = await start_lobby(between_hands_s="0.02")
    return process


async def private_table(http: httpx.AsyncClient, host: str, **config: Any) -> dict[str, Any]:
    response = await http.post("/api/v1/tables/private", json={**SETTINGS, **config}, headers=bearer(host))
    assert response.status_code == 201, response.text
    table: dict[str, Any] = response.json()
    return table


async def table_rake(lobby: LobbyProcess, table_id: str) -> int:
    """The rake of every hand at the table, from the lobby's own records."""
    engine = create_async_engine(lobby.database_url)
    try:
        async with engine.connect() as connection:
            total = await connection.scalar(
                text("SELECT coalesce(sum(rake), 0) FROM hands WHERE table_id = :t"), {"t": table_id}
            )
    finally:
        await engine.dispose()
    return int(total)


async def closed_by_the_table(socket: Any) -> bool:
    """Read until the server closes the socket (a removed player's), with its closing code 4403."""
    async with asyncio.timeout(15):
        try:
            while True:
                await socket.recv()
        except websockets.ConnectionClosed as exc:
            return exc.rcvd is not None and exc.rcvd.code == 4403


async def messages_until(socket: Any, kind: str, timeout_s: float = 15.0, **match: Any) -> list[dict[str, Any]]:
    """Everything the socket received up to and including the first ``kind`` message matching ``match``."""
    seen: list[dict[str, Any]] = []
    async with asyncio.timeout(timeout_s):
        while True:
            message = json.loads(await socket.recv())
            seen.append(message)
            if message.get("type") == kind and all(message.get(k) == v for k, v in match.items()):
                return seen


async def test_a_player_opens_a_private_table_that_lists_without_its_players(lobby: LobbyProcess) -> None:
    host = str(uuid.uuid4())
    async with httpx.AsyncClient(base_url=lobby.url, timeout=30) as http:
        assert (await http.post("/api/v1/tables/private", json=SETTINGS)).status_code == 401
        # The same validations as any table: problem+json 4xx.
        for bad in ({"seats": 11}, {"small_blind": "3", "big_blind": "2"}, {"private": False}, {"name": ""}):
            refused = await http.post("/api/v1/tables/private", json={**SETTINGS, **bad}, headers=bearer(host))
            assert 400 <= refused.status_code < 500, refused.text
            assert refused.headers["content-type"].startswith("application/problem+json")
        table = await private_table(http, host)
        assert table["private"] is True
        assert (await http.get(f"/api/v1/tables/{table['id']}/members/me", headers=bearer(host))).json()[
            "status"
        ] == "host"
        listed = (await http.get("/api/v1/tables", params={"private": "true", "limit": 200})).json()
        assert table["id"] in [t["id"] for t in listed]
        assert all(t["players"] == [] for t in listed)
        # An open table has no members to ask to join.
        open_table = (await http.post("/api/v1/tables", json={**SETTINGS, "name": "open"}, headers=ADMIN)).json()
        joined = await http.post(f"/api/v1/tables/{open_table['id']}/members", headers=bearer(host))
        assert joined.status_code == 404


async def test_join_requests_approval_rejection_and_who_may_sit_or_watch(lobby: LobbyProcess, ledger: Ledger) -> None:
    host, guest, stranger = (str(uuid.uuid4()) for _ in range(3))
    for player in (host, guest, stranger):
        await ledger.fund(player, 1_000)
    async with httpx.AsyncClient(base_url=lobby.url, timeout=30) as http:
        table = await private_table(http, host)
        tid = table["id"]
        ws = f"{lobby.ws_url}/api/v1/tables/{tid}/ws"
        members = f"/api/v1/tables/{tid}/members"
        sit = f"/api/v1/tables/{tid}/seats"
        async with websockets.connect(ws, additional_headers=bearer(host)) as host_socket:
            await messages_until(host_socket, "snapshot")

            # A stranger can neither sit, nor read the state, nor watch.
            assert (
                await http.post(sit, json={"seat": 0, "buy_in": "100"}, headers=bearer(stranger))
            ).status_code == 403
            assert (await http.get(f"/api/v1/tables/{tid}/state", headers=bearer(stranger))).status_code == 403
            with pytest.raises(websockets.InvalidStatus):
                async with websockets.connect(ws, additional_headers=bearer(stranger)):
                    pass

            # Ten identical requests at once over real HTTP: one pending membership, one message to the table.
            asked = await asyncio.gather(*(http.post(members, headers=bearer(guest)) for _ in range(10)))
            assert {r.status_code for r in asked} == {200}, [r.text for r in asked]
            assert {r.json()["status"] for r in asked} == {"pending"}
            await messages_until(host_socket, "join-requested", userId=guest)
            listed = (await http.get(members, headers=bearer(host))).json()
            assert [(m["player_id"], m["status"]) for m in listed] == [(guest, "pending")]
            assert (await http.get(members, headers=bearer(guest))).status_code == 403  # the host's list

            # Pending: still no seat and no view. Only the host decides.
            assert (await http.post(sit, json={"seat": 1, "buy_in": "100"}, headers=bearer(guest))).status_code == 403
            assert (await http.get(f"/api/v1/tables/{tid}/state", headers=bearer(guest))).status_code == 403
            assert (await http.post(f"{members}/{guest}/approve", headers=bearer(stranger))).status_code == 403
            assert (await http.post(f"{members}/{stranger}/approve", headers=bearer(host))).status_code == 404
            assert (await http.post(f"{members}/{host}/kick", headers=bearer(host))).status_code == 409

            # Rejected: still no seat; asking again changes nothing; the host may still approve later.
            rejected = await http.post(f"{members}/{guest}/reject", headers=bearer(host))
            assert rejected.json()["status"] == "rejected"
            await messages_until(host_socket, "join-rejected", userId=guest)
            assert (await http.post(members, headers=bearer(guest))).json()["status"] == "rejected"
            assert (await http.post(sit, json={"seat": 1, "buy_in": "100"}, headers=bearer(guest))).status_code == 403
            assert (await http.post(f"{members}/{guest}/kick", headers=bearer(host))).status_code == 409

            # Approved, by five identical approvals at once: one effect, one message.
            approvals = await asyncio.gather(
                *(http.post(f"{members}/{guest}/approve", headers=bearer(host)) for _ in range(5))
            )
            assert {r.status_code for r in approvals} == {200}
            assert (await http.get(f"{members}/me", headers=bearer(guest))).json()["status"] == "approved"
            seen = await messages_until(host_socket, "join-approved", userId=guest)
            assert (await http.post(f"{members}/{guest}/reject", headers=bearer(host))).status_code == 409

            # Approved: watch, or pick a seat and buy in as at any table.
            state = await http.get(f"/api/v1/tables/{tid}/state", headers=bearer(guest))
            assert state.status_code == 200
            assert state.json()["role"] == "spectator"
            sat = await http.post(sit, json={"seat": 2, "buy_in": "100"}, headers=bearer(guest))
            assert sat.status_code == 201, sat.text
            assert await ledger.player_balance(guest) == 900
            seen += await messages_until(host_socket, "player-joined", userId=guest)
            assert [m["type"] for m in seen].count("join-approved") == 1


async def test_the_host_kicks_a_player_after_the_hand_and_the_chips_go_home(
    lobby: LobbyProcess, ledger: Ledger
) -> None:
    host, guest, watcher = (str(uuid.uuid4()) for _ in range(3))
    for player in (host, guest):
        await ledger.fund(player, 1_000)
    async with httpx.AsyncClient(base_url=lobby.url, timeout=30) as http:
        table = await private_table(http, host)
        tid = table["id"]
        ws = f"{lobby.ws_url}/api/v1/tables/{tid}/ws"
        members = f"/api/v1/tables/{tid}/members"
        for player in (guest, watcher):
            await http.post(members, headers=bearer(player))
            assert (await http.post(f"{members}/{player}/approve", headers=bearer(host))).status_code == 200
        bots = [Bot(ws, user_token(p), p, POLICIES["random"]) for p in (host, guest)]
        for seat, bot in enumerate(bots):
            await bot.connect()
            sat = await http.post(
                f"/api/v1/tables/{tid}/seats", json={"seat": seat, "buy_in": "100"}, headers=bearer(bot.player_id)
            )
            assert sat.status_code == 201, sat.text
        async with websockets.connect(ws, additional_headers=bearer(watcher)) as watching:
            await messages_until(watching, "snapshot")
            await asyncio.gather(*(bot.play(1, timeout_s=60) for bot in bots))  # hands are being dealt

            # Three kicks at once while the guest is (most likely) dealt in: one effect.
            kicks = await asyncio.gather(
                *(http.post(f"{members}/{guest}/kick", headers=bearer(host)) for _ in range(3))
            )
            assert {r.status_code for r in kicks} == {200}, [r.text for r in kicks]
            assert {r.json()["status"] for r in kicks} == {"kicked"}
            # The guest plays the hand out; then the seat is cashed out through the leave path.
            playing = [asyncio.create_task(bot.play(10_000, timeout_s=60)) for bot in bots]
            seen = await messages_until(watching, "player-left", userId=guest, timeout_s=60)
            assert [m["type"] for m in seen].count("player-kicked") == 1
            for task in playing:
                task.cancel()
            await asyncio.gather(*playing, return_exceptions=True)

        # Every chip is where it belongs: the guest's stack went home once; the host leaves; the escrow
        # empties (rake is settled to the house by the reconciler).
        seats = (await http.get(f"/api/v1/tables/{tid}/state", headers=bearer(host))).json()["players"]
        assert guest not in [p["userId"] for p in seats]
        assert (await http.delete(f"/api/v1/tables/{tid}/seats/me", headers=bearer(host))).status_code == 200
        escrow_account = await ledger.account(f"table:{tid}", "table_escrow")
        async with asyncio.timeout(30):
            while await ledger.balance(escrow_account) != 0:  # noqa: ASYNC110 - another process settles
                await asyncio.sleep(0.1)
        rake = await table_rake(lobby, tid)
        assert await ledger.player_balance(guest) + await ledger.player_balance(host) + rake == 2_000

        # Kicked: no seat, no view, until the host approves again (asking changes nothing).
        assert (await http.post(members, headers=bearer(guest))).json()["status"] == "kicked"
        again = await http.post(f"/api/v1/tables/{tid}/seats", json={"seat": 1, "buy_in": "100"}, headers=bearer(guest))
        assert again.status_code == 403
        assert (await http.get(f"/api/v1/tables/{tid}/state", headers=bearer(guest))).status_code == 403
        # The kicked player's socket was closed by the table.
        assert await closed_by_the_table(bots[1].socket)
        assert (await http.post(f"{members}/{guest}/approve", headers=bearer(host))).json()["status"] == "approved"
        for bot in bots:
            await bot.close()


async def test_kicking_a_seated_player_between_hands_cashes_out_at_once(lobby: LobbyProcess, ledger: Ledger) -> None:
    host, guest = str(uuid.uuid4()), str(uuid.uuid4())
    await ledger.fund(guest, 1_000)
    async with httpx.AsyncClient(base_url=lobby.url, timeout=30) as http:
        table = await private_table(http, host)
        tid = table["id"]
        members = f"/api/v1/tables/{tid}/members"
        await http.post(members, headers=bearer(guest))
        await http.post(f"{members}/{guest}/approve", headers=bearer(host))
        sat = await http.post(f"/api/v1/tables/{tid}/seats", json={"seat": 0, "buy_in": "150"}, headers=bearer(guest))
        assert sat.status_code == 201
        assert await ledger.player_balance(guest) == 850
        async with websockets.connect(
            f"{lobby.ws_url}/api/v1/tables/{tid}/ws", additional_headers=bearer(guest)
        ) as socket:
            await messages_until(socket, "snapshot")
            kicks = await asyncio.gather(
                *(http.post(f"{members}/{guest}/kick", headers=bearer(host)) for _ in range(4))
            )
            assert {r.status_code for r in kicks} == {200}
            seen = await messages_until(socket, "error")
            assert any(m["type"] == "player-kicked" and m["afterHand"] is False for m in seen)
            assert await closed_by_the_table(socket)
        assert await ledger.player_balance(guest) == 1_000  # cashed out once, whatever the repeats
        escrow = await ledger.balance(await ledger.account(f"table:{tid}", "table_escrow"))
        assert escrow == 0
