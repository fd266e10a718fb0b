"""Through the development gateway serving kong.yml: REST and the table WebSocket (jwt on the handshake,
frames relayed both ways), so a person can sit at a table through the gateway and play against bots."""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from lobby_support import VENV_BIN, Ledger, LobbyProcess, bearer, free_port, new_table, user_token
from tablium_lobby.bots import POLICIES, Bot
from tablium_lobby.bots.human import HumanPlayer

KONG_YML = Path(__file__).resolve().parents[3] / "gateway" / "kong.yml"


@pytest.fixture(scope="module")
async def through_gateway(start_lobby: Any) -> AsyncIterator[tuple[LobbyProcess, str]]:
    lobby: LobbyProcess = await start_lobby(between_hands_s="0.02")
    port = free_port()
    process = subprocess.Popen(  # noqa: ASYNC220 - started once per module
        [
            str(VENV_BIN / "tablium-gateway"),
            "--config",
            str(KONG_YML),
            "--port",
            str(port),
            "--upstream",
            f"lobby={lobby.url}",
            "--disable-plugin",
            "rate-limiting",
        ],
        env=dict(os.environ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(timeout=1) as probe:
            for _ in range(100):
                try:
                    await probe.get(f"{url}/api/v1/tables")
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
        yield lobby, url
    finally:
        process.terminate()
        process.wait(timeout=10)


async def test_bots_play_through_the_gateway(through_gateway: tuple[LobbyProcess, str], ledger: Ledger) -> None:
    _, gateway = through_gateway
    async with httpx.AsyncClient(base_url=gateway, timeout=30) as http:
        table = await new_table(http, seats=3)
        ws = gateway.replace("http://", "ws://") + f"/api/v1/tables/{table['id']}/ws"

        # No token, a bad token: refused at the gateway's handshake.
        with pytest.raises(websockets.InvalidStatus):
            async with websockets.connect(ws):
                pass
        with pytest.raises(websockets.InvalidStatus):
            async with websockets.connect(ws, additional_headers={"Authorization": "Bearer nope"}):
                pass

        players = [str(uuid.uuid4()) for _ in range(3)]
        bots = [Bot(ws, user_token(p), p, POLICIES["random"], rng=random.Random(i)) for i, p in enumerate(players)]
        for seat, bot in enumerate(bots):
            await ledger.fund(bot.player_id, 1_000)
            await bot.connect()
            sat = await http.post(
                f"/api/v1/tables/{table['id']}/seats",
                json={"seat": seat, "buy_in": "200"},
                headers=bearer(bot.player_id),
            )
            assert sat.status_code == 201, sat.text
        await asyncio.gather(*(bot.play(2, timeout_s=60) for bot in bots))
        assert all(bot.hands_ended >= 2 for bot in bots)
        assert bots[0].received[0]["type"] == "join-ack"

        # A heartbeat goes through and comes back.
        await bots[0].send({"type": "heartbeat"})
        async with asyncio.timeout(5):
            while True:
                message = await bots[0].socket.recv()
                if '"heartbeat"' in message:
                    break
        for bot in bots:
            await bot.close()


async def test_a_browser_opens_the_table_socket_with_a_ticket_through_the_gateway(
    through_gateway: tuple[LobbyProcess, str],
) -> None:
    """No Authorization on the socket (a browser can't send one): a single-use ticket, in the query or as a
    subprotocol, through the gateway; replayed or for another table, refused."""
    _, gateway = through_gateway
    host, guest = str(uuid.uuid4()), str(uuid.uuid4())
    async with httpx.AsyncClient(base_url=gateway, timeout=30) as http:
        settings = {"name": "Through the gateway", "small_blind": "1", "big_blind": "2", "seats": 3}
        created = await http.post("/api/v1/tables/private", json=settings, headers=bearer(host))
        assert created.status_code == 201, created.text
        tid = created.json()["id"]
        other = (await new_table(http))["id"]
        ws = gateway.replace("http://", "ws://") + f"/api/v1/tables/{tid}/ws"

        async def ticket(player: str, table_id: str = tid) -> str:
            issued = await http.post(f"/api/v1/tables/{table_id}/ws-ticket", headers=bearer(player))
            assert issued.status_code == 201, issued.text
            value: str = issued.json()["ticket"]
            return value

        async def join_ack(socket: Any) -> dict[str, Any]:
            async with asyncio.timeout(10):
                while True:
                    message: dict[str, Any] = json.loads(await socket.recv())
                    if message["type"] == "join-ack":
                        return message

        assert (await http.post(f"/api/v1/tables/{tid}/ws-ticket")).status_code == 401  # the gateway's jwt
        first = await ticket(host)
        async with websockets.connect(f"{ws}?ticket={first}") as socket:
            assert (await join_ack(socket))["role"] == "host"
        with pytest.raises(websockets.InvalidStatus):
            async with websockets.connect(f"{ws}?ticket={first}"):
                pass
        by_protocol = await ticket(host)
        async with websockets.connect(ws, subprotocols=["tablium.v1", f"ticket.{by_protocol}"]) as socket:  # type: ignore[list-item]
            assert socket.subprotocol == "tablium.v1"
            assert (await join_ack(socket))["userId"] == host
        with pytest.raises(websockets.InvalidStatus):
            async with websockets.connect(f"{ws}?ticket={await ticket(host, other)}"):
                pass

        # The private table through the gateway: a guest's ticket opens nothing until the host approves.
        with pytest.raises(websockets.InvalidStatus):
            async with websockets.connect(f"{ws}?ticket={await ticket(guest)}"):
                pass
        members = f"/api/v1/tables/{tid}/members"
        assert (await http.post(members, headers=bearer(guest))).json()["status"] == "pending"
        assert (await http.post(f"{members}/{guest}/approve", headers=bearer(host))).json()["status"] == "approved"
        async with websockets.connect(f"{ws}?ticket={await ticket(guest)}") as socket:
            assert (await join_ack(socket))["role"] == "spectator"


async def test_a_person_plays_a_hand_against_a_bot_through_the_gateway(
    through_gateway: tuple[LobbyProcess, str], ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``tablium-bots sit-in``'s client: the table's messages shown, the person's decisions read from the
    keyboard (here a script: a typo, an impossible raise, then calls and checks), against a bot."""
    _, gateway = through_gateway
    typed = iter(["x", "r 1", *["c", "k"] * 50])
    prompts: list[str] = []

    def keyboard(prompt: str) -> str:
        prompts.append(prompt)
        return next(typed)

    monkeypatch.setattr("builtins.input", keyboard)
    shown: list[str] = []
    monkeypatch.setattr("tablium_lobby.bots.human.click.echo", lambda line: shown.append(str(line)))
    async with httpx.AsyncClient(base_url=gateway, timeout=30) as http:
        table = await new_table(http, seats=2)
        ws = gateway.replace("http://", "ws://") + f"/api/v1/tables/{table['id']}/ws"
        person_id, bot_id = str(uuid.uuid4()), str(uuid.uuid4())
        person = HumanPlayer(ws, user_token(person_id), person_id)
        bot = Bot(ws, user_token(bot_id), bot_id, POLICIES["random"], rng=random.Random(7))
        for seat, player in enumerate((person, bot)):
            await ledger.fund(player.player_id, 1_000)
            await player.connect()
            sat = await http.post(
                f"/api/v1/tables/{table['id']}/seats",
                json={"seat": seat, "buy_in": "200"},
                headers=bearer(player.player_id),
            )
            assert sat.status_code == 201, sat.text
        # Hands until the person got a turn (the bot may fold a hand before it comes).
        for hands in range(1, 11):
            await asyncio.gather(person.play(hands, timeout_s=60), bot.play(hands, timeout_s=60))
            if prompts:
                break
        await person.close()
        await bot.close()
    assert prompts, "the person never got a turn in 10 hands"
    assert all(p.startswith("your turn (fold") for p in prompts)
    assert any(line.startswith("your cards: ") for line in shown)
    assert any(line.startswith("unknown: 'x'") for line in shown)  # the typo was explained, not sent
    assert any(line.startswith("raise to between") for line in shown)  # so was the impossible raise
    assert any(line.startswith("result: won by") for line in shown)
    assert not person.errors  # nothing the person typed reached the table as an illegal action
