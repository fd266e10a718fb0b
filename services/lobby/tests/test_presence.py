"""Disconnect is not a free seat: a player whose socket drops is sat out after the grace period (acted for
at once: check, else fold), then cashed out with the seat freed; both announced to the table."""

from __future__ import annotations

import asyncio
import random
import uuid
from typing import Any

import httpx
from lobby_support import Ledger, LobbyProcess, bearer, new_table, user_token
from tablium_lobby.bots import POLICIES, Bot


async def test_a_disconnected_player_is_sat_out_then_cashed_out(start_lobby: Any, ledger: Ledger) -> None:
    lobby: LobbyProcess = await start_lobby(between_hands_s="0.05", disconnect_grace_s="0.5", sit_out_timeout_s="2")
    async with httpx.AsyncClient(base_url=lobby.url, timeout=30) as http:
        table = await new_table(http, seats=3, action_clock_s=20)
        ws = f"{lobby.ws_url}/api/v1/tables/{table['id']}/ws"
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
        gone, *staying = bots
        await asyncio.gather(*(bot.play(1, timeout_s=30) for bot in bots))
        await gone.close()  # the socket drops; the seat stays, for now
        loop = asyncio.get_running_loop()
        started = loop.time()
        playing = [asyncio.create_task(bot.play(10**6, timeout_s=60)) for bot in staying]

        def seen(kind: str) -> bool:
            return any(m["type"] == kind and m.get("userId") == gone.player_id for m in staying[0].received)

        async with asyncio.timeout(30):
            while not seen("player-sitting-out"):  # noqa: ASYNC110 - bots run in tasks
                await asyncio.sleep(0.05)
        sat_out_after = loop.time() - started
        async with asyncio.timeout(30):
            while not seen("player-left"):  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        # Play went on without waiting out the 20 s clock for the absent player.
        assert sat_out_after < 10
        view = (await http.get(f"/api/v1/tables/{table['id']}")).json()
        assert gone.player_id not in [p["player_id"] for p in view["players"]]
        balance = await ledger.player_balance(gone.player_id)
        assert 800 <= balance <= 1_200, "cashed out what was left of the stack"
        for task in playing:
            task.cancel()
        await asyncio.gather(*playing, return_exceptions=True)
        for bot in staying:
            await bot.close()


async def test_the_lease_holder_sits_out_a_player_whose_instance_died(
    start_lobby: Any, make_database: Any, ledger: Ledger
) -> None:
    """The disconnect timers are the lease holder's, fed by the presence every instance shares in Redis: a
    player whose only socket was on an instance that was SIGKILLed (nobody there to notice the socket go)
    is sat out, then cashed out, by the holder."""
    database_url = await make_database("lobby_presence_two")
    options = {"between_hands_s": "0.05", "disconnect_grace_s": "0.5", "sit_out_timeout_s": "1", "lease_ttl_s": "1.5"}
    a: LobbyProcess = await start_lobby(database_url, lease_renew_s="0.3", **options)
    players = [str(uuid.uuid4()) for _ in range(3)]
    async with httpx.AsyncClient(base_url=a.url, timeout=30) as http:
        table = await new_table(http, seats=3, action_clock_s=20)
        path = f"/api/v1/tables/{table['id']}/ws"
        staying = [
            Bot(f"{a.ws_url}{path}", user_token(p), p, POLICIES["random"], rng=random.Random(i))
            for i, p in enumerate(players[:2])
        ]
        for seat, bot in enumerate(staying):
            await ledger.fund(bot.player_id, 1_000)
            await bot.connect()
            sat = await http.post(
                f"/api/v1/tables/{table['id']}/seats",
                json={"seat": seat, "buy_in": "200"},
                headers=bearer(bot.player_id),
            )
            assert sat.status_code == 201, sat.text
        # A holds the table's lease (it dealt); B only serves the third player's socket.
        b: LobbyProcess = await start_lobby(database_url, lease_renew_s="0.3", **options)
        gone = Bot(f"{b.ws_url}{path}", user_token(players[2]), players[2], POLICIES["random"], rng=random.Random(7))
        await ledger.fund(gone.player_id, 1_000)
        await gone.connect()
        sat = await http.post(
            f"/api/v1/tables/{table['id']}/seats", json={"seat": 2, "buy_in": "200"}, headers=bearer(gone.player_id)
        )
        assert sat.status_code == 201, sat.text
        playing = [asyncio.create_task(bot.play(10**6, timeout_s=90)) for bot in (*staying, gone)]
        async with asyncio.timeout(30):
            while gone.hands_ended < 1:  # noqa: ASYNC110 - bots run in tasks
                await asyncio.sleep(0.05)
        b.kill()

        def seen(kind: str) -> bool:
            return any(m["type"] == kind and m.get("userId") == gone.player_id for m in staying[0].received)

        async with asyncio.timeout(30):
            while not (seen("player-sitting-out") and seen("player-left")):  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        view = (await http.get(f"/api/v1/tables/{table['id']}")).json()
        assert gone.player_id not in [p["player_id"] for p in view["players"]]
        for task in playing:
            task.cancel()
        await asyncio.gather(*playing, return_exceptions=True)
        for bot in staying:
            await bot.close()
