"""Two lobby processes share Postgres and Redis: clients connect to either, and every instance's sockets get
every table message (relayed through Redis pub/sub), in commit order."""

from __future__ import annotations

import asyncio
import random
import uuid
from typing import Any

import httpx
from lobby_support import Ledger, LobbyProcess, bearer, new_table, user_token
from tablium_lobby.bots import POLICIES, Bot


async def test_players_on_two_instances_play_at_one_table(start_lobby: Any, make_database: Any, ledger: Ledger) -> None:
    database_url = await make_database("lobby_two")
    a: LobbyProcess = await start_lobby(database_url, between_hands_s="0.05")
    b: LobbyProcess = await start_lobby(database_url, between_hands_s="0.05")
    players = [str(uuid.uuid4()) for _ in range(3)]
    async with httpx.AsyncClient(base_url=a.url, timeout=30) as http:
        table = await new_table(http, seats=3, rake_bps=500)
        sockets = [a.ws_url, a.ws_url, b.ws_url]
        bots = [
            Bot(f"{url}/api/v1/tables/{table['id']}/ws", user_token(p), p, POLICIES["random"], rng=random.Random(i))
            for i, (url, p) in enumerate(zip(sockets, players, strict=True))
        ]
        for seat, bot in enumerate(bots):
            await ledger.fund(bot.player_id, 1_000)
            await bot.connect()
            # Sit down through either instance.
            base = a.url if seat % 2 == 0 else b.url
            sat = await http.post(
                f"{base}/api/v1/tables/{table['id']}/seats",
                json={"seat": seat, "buy_in": "200"},
                headers=bearer(bot.player_id),
            )
            assert sat.status_code == 201, sat.text
        await asyncio.gather(*(bot.play(3, timeout_s=60) for bot in bots))
        remote = bots[2]
        assert remote.hands_ended >= 3, "the client on instance B followed hands run on A"
        starts = [m["handId"] for m in remote.received if m["type"] == "hand-start"]
        local = [m["handId"] for m in bots[0].received if m["type"] == "hand-start"]
        # The client on B joined after the first hand began: it saw the same hands from then on, in order.
        assert starts
        assert starts == local[local.index(starts[0]) :][: len(starts)]
        seqs = [m["seq"] for m in remote.received if isinstance(m.get("seq"), int)]
        assert seqs == sorted(seqs), "in commit order on the other instance too"
        for bot in bots:
            mine = {m["seat"] for m in bot.received if m["type"] == "new-player-card"}
            assert mine <= {players.index(bot.player_id)}, "hole cards only to their owner, on every instance"

        playing = [asyncio.create_task(bot.play(10**6, timeout_s=60)) for bot in bots]
        for bot in bots:
            left = await http.delete(f"/api/v1/tables/{table['id']}/seats/me", headers=bearer(bot.player_id))
            assert left.status_code == 200, left.text
        async with asyncio.timeout(30):
            while (await http.get(f"/api/v1/tables/{table['id']}")).json()["players"]:  # noqa: ASYNC110
                await asyncio.sleep(0.1)
        for task in playing:
            task.cancel()
        await asyncio.gather(*playing, return_exceptions=True)
        for bot in bots:
            await bot.close()
    escrow = await ledger.account(f"table:{table['id']}", "table_escrow")
    async with asyncio.timeout(15):
        while await ledger.balance(escrow) != 0:  # noqa: ASYNC110 - the rake settles after the hand
            await asyncio.sleep(0.1)
