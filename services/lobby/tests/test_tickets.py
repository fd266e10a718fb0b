"""Browser WebSocket tickets and rejoin tokens against a running lobby process (real Postgres, Redis, wallet).

A ticket opens one handshake at one table; a rejoin token resumes one seat once. Replayed, expired and
other-table ones are refused."""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from typing import Any

import httpx
import pytest
import websockets
from lobby_support import Ledger, LobbyProcess, bearer, new_table
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from tablium_lobby.settings import LobbySettings


@pytest.fixture(scope="module")
async def lobby(start_lobby: Any) -> LobbyProcess:
    process: LobbyProcess = await start_lobby(between_hands_s="0.02")
    return process


def lobby_redis_url() -> str:
    """The Redis the lobby processes use (the same environment as this test's)."""
    return LobbySettings.from_env("lobby").redis_url


async def ticket_for(http: httpx.AsyncClient, table_id: str, player: str) -> str:
    response = await http.post(f"/api/v1/tables/{table_id}/ws-ticket", headers=bearer(player))
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["subprotocol"] == "tablium.v1"
    assert 0 < body["expires_in_s"] <= 60
    ticket: str = body["ticket"]
    return ticket


async def first(socket: Any, kind: str) -> dict[str, Any]:
    async with asyncio.timeout(15):
        while True:
            message: dict[str, Any] = json.loads(await socket.recv())
            if message["type"] == kind:
                return message


async def refused(url: str, **options: Any) -> bool:
    try:
        async with websockets.connect(url, **options) as socket:
            await socket.recv()
    except websockets.InvalidStatus:
        return True
    return False


async def test_a_ticket_opens_one_handshake_at_one_table(lobby: LobbyProcess, run_id: str) -> None:
    player = str(uuid.uuid4())
    async with httpx.AsyncClient(base_url=lobby.url, timeout=30) as http:
        table, other = await new_table(http), await new_table(http)
        ws = f"{lobby.ws_url}/api/v1/tables/{table['id']}/ws"
        assert (await http.post(f"/api/v1/tables/{table['id']}/ws-ticket")).status_code == 401
        missing = await http.post(f"/api/v1/tables/{uuid.uuid4()}/ws-ticket", headers=bearer(player))
        assert missing.status_code == 404
        assert missing.headers["content-type"].startswith("application/problem+json")

        # In the query string: works once, as the player it was issued to.
        ticket = await ticket_for(http, table["id"], player)
        async with websockets.connect(f"{ws}?ticket={ticket}") as socket:
            ack = await first(socket, "join-ack")
            assert ack["userId"] == player
        assert await refused(f"{ws}?ticket={ticket}")  # replayed

        # As a subprotocol (nothing in the URL): the server selects tablium.v1.
        ticket = await ticket_for(http, table["id"], player)
        async with websockets.connect(ws, subprotocols=["tablium.v1", f"ticket.{ticket}"]) as socket:  # type: ignore[list-item]
            assert socket.subprotocol == "tablium.v1"
            assert (await first(socket, "join-ack"))["userId"] == player
        assert await refused(ws, subprotocols=["tablium.v1", f"ticket.{ticket}"])

        # For another table: refused (and spent).
        ticket = await ticket_for(http, other["id"], player)
        assert await refused(f"{ws}?ticket={ticket}")
        assert await refused(f"{lobby.ws_url}/api/v1/tables/{other['id']}/ws?ticket={ticket}")

        # Expired (its Redis key gone at the end of its life): refused.
        ticket = await ticket_for(http, table["id"], player)
        redis = Redis.from_url(lobby_redis_url())
        try:
            key = f"test-{run_id}:lobby:ws-ticket:{hashlib.sha256(ticket.encode()).hexdigest()}"
            assert await redis.pexpire(key, 1)
            while await redis.exists(key):  # noqa: ASYNC110 - waiting for Redis to expire the key
                await asyncio.sleep(0.01)
        finally:
            await redis.aclose()
        assert await refused(f"{ws}?ticket={ticket}")

        # Made up, or no credential at all: refused. The Authorization header keeps working.
        assert await refused(f"{ws}?ticket={'x' * 43}")
        assert await refused(ws)
        async with websockets.connect(ws, additional_headers=bearer(player)) as socket:
            assert (await first(socket, "join-ack"))["userId"] == player


async def test_one_ticket_raced_by_many_sockets_opens_one(lobby: LobbyProcess) -> None:
    player = str(uuid.uuid4())
    async with httpx.AsyncClient(base_url=lobby.url, timeout=30) as http:
        table = await new_table(http)
        ticket = await ticket_for(http, table["id"], player)
        url = f"{lobby.ws_url}/api/v1/tables/{table['id']}/ws?ticket={ticket}"
        outcomes = await asyncio.gather(*(refused(url) for _ in range(8)))
        assert outcomes.count(False) == 1, outcomes


async def test_rejoin_tokens_resume_a_seat_once(lobby: LobbyProcess, ledger: Ledger) -> None:
    player, other_player = str(uuid.uuid4()), str(uuid.uuid4())
    await ledger.fund(player, 1_000)
    await ledger.fund(other_player, 1_000)
    async with httpx.AsyncClient(base_url=lobby.url, timeout=30) as http:
        table, other = await new_table(http), await new_table(http)
        for t, who in ((table, player), (other, player), (table, other_player)):
            seat = 0 if who == player else 1
            sat = await http.post(
                f"/api/v1/tables/{t['id']}/seats", json={"seat": seat, "buy_in": "100"}, headers=bearer(who)
            )
            assert sat.status_code == 201, sat.text
        ws = f"{lobby.ws_url}/api/v1/tables/{table['id']}/ws"
        me = bearer(player)

        async with websockets.connect(ws, additional_headers=me) as socket:
            ack = await first(socket, "join-ack")
            assert ack["resumed"] is False
            token = ack["rejoinToken"]
            # A seated player may also ask for one; a spectator may not.
            await socket.send(json.dumps({"type": "rejoin-token"}))
            asked = await first(socket, "rejoin-token")
            assert asked["rejoinToken"] != token
        async with websockets.connect(ws, additional_headers=bearer(str(uuid.uuid4()))) as watcher:
            await first(watcher, "snapshot")
            await watcher.send(json.dumps({"type": "rejoin-token"}))
            assert "seated" in (await first(watcher, "error"))["error"]

        # A valid token resumes the seat, once; the new socket gets the next token.
        async with websockets.connect(f"{ws}?rejoin={token}", additional_headers=me) as socket:
            ack = await first(socket, "join-ack")
            assert ack["resumed"] is True
            assert ack["seat"] == 0
            rotated = ack["rejoinToken"]
            assert rotated != token
        # Reused: an error, then a fresh (not resumed) join.
        async with websockets.connect(f"{ws}?rejoin={token}", additional_headers=me) as socket:
            error = await first(socket, "error")
            assert error["code"] == "rejoin-refused"
            assert "already used" in error["error"]
            assert (await first(socket, "join-ack"))["resumed"] is False

        # Another player's token, or one for another table: refused.
        async with websockets.connect(f"{ws}?rejoin={rotated}", additional_headers=bearer(other_player)) as socket:
            assert (await first(socket, "error"))["code"] == "rejoin-refused"
        other_ws = f"{lobby.ws_url}/api/v1/tables/{other['id']}/ws"
        async with websockets.connect(f"{other_ws}?rejoin={rotated}", additional_headers=me) as socket:
            assert "another table" in (await first(socket, "error"))["error"]
            assert (await first(socket, "join-ack"))["resumed"] is False

        # Expired: refused. The one refused above for the wrong table was not spent: expire it here.
        engine = create_async_engine(lobby.database_url)
        try:
            async with engine.begin() as connection:
                await connection.execute(
                    text("UPDATE rejoin_tokens SET expires_at = now() - interval '1 second' WHERE token_hash = :h"),
                    {"h": hashlib.sha256(rotated.encode()).digest()},
                )
        finally:
            await engine.dispose()
        async with websockets.connect(f"{ws}?rejoin={rotated}", additional_headers=me) as socket:
            assert "expired" in (await first(socket, "error"))["error"]
        # Made up: refused.
        async with websockets.connect(f"{ws}?rejoin={'y' * 43}", additional_headers=me) as socket:
            assert (await first(socket, "error"))["code"] == "rejoin-refused"
