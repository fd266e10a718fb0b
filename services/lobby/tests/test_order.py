"""Every socket gets a table's state messages in commit (seq) order, whichever instance committed them.

Two lobby processes; a hand runs (two bots) while sixteen players sit down and leave through either
instance at once. Each commit publishes after its own commit, so two commits' messages may reach Redis
in either order; every socket must still see each seq once, in order, from its snapshot on, with no gap.
"""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from typing import Any

import httpx
import websockets
from lobby_support import Ledger, LobbyProcess, bearer, new_table, user_token
from tablium_lobby.bots import POLICIES, Bot


def check_order(messages: list[dict[str, Any]], who: str) -> int:
    """From the first snapshot on: seqs never go back, and none is missing. Returns how many seqs."""
    start = next(i for i, m in enumerate(messages) if m["type"] == "snapshot")
    seqs = [m["seq"] for m in messages[start:] if isinstance(m.get("seq"), int)]
    assert seqs == sorted(seqs), f"{who}: out of seq order"
    distinct = sorted(set(seqs))
    missing = sorted(set(range(distinct[0], distinct[-1] + 1)) - set(distinct))
    assert not missing, f"{who}: seqs {missing} never arrived"
    return len(distinct)


async def test_seat_changes_and_actions_reach_every_socket_in_seq_order(
    start_lobby: Any, make_database: Any, ledger: Ledger
) -> None:
    database_url = await make_database("lobby_order")
    a: LobbyProcess = await start_lobby(database_url, between_hands_s="0.05")
    b: LobbyProcess = await start_lobby(database_url, between_hands_s="0.05")
    players = [str(uuid.uuid4()) for _ in range(2)]
    async with httpx.AsyncClient(base_url=a.url, timeout=30) as http:
        table = await new_table(http, seats=10, action_clock_s=1, time_bank_s=0)
        path = f"/api/v1/tables/{table['id']}/ws"
        bots = [
            Bot(f"{url}{path}", user_token(p), p, POLICIES["random"], rng=random.Random(i))
            for i, (url, p) in enumerate(zip((a.ws_url, b.ws_url), players, strict=True))
        ]
        for seat, bot in enumerate(bots):
            await ledger.fund(bot.player_id, 1_000)
            await bot.connect()
            sat = await http.post(
                f"{a.url}/api/v1/tables/{table['id']}/seats",
                json={"seat": seat, "buy_in": "200"},
                headers=bearer(bot.player_id),
            )
            assert sat.status_code == 201, sat.text
        playing = [asyncio.create_task(bot.play(10**6, timeout_s=120)) for bot in bots]
        watched: dict[str, list[dict[str, Any]]] = {"on A": [], "on B": []}

        async def watch(url: str, into: list[dict[str, Any]]) -> None:
            async with websockets.connect(f"{url}{path}", additional_headers=bearer(str(uuid.uuid4()))) as socket:
                async for raw in socket:
                    into.append(json.loads(raw))

        watchers = {
            name: asyncio.create_task(watch(url, watched[name]))
            for name, url in (("on A", a.ws_url), ("on B", b.ws_url))
        }
        async with asyncio.timeout(30):
            while min(bot.hands_ended for bot in bots) < 1:  # noqa: ASYNC110 - bots run in tasks
                await asyncio.sleep(0.05)

        async def churn(seat: int, player: str) -> None:
            await ledger.fund(player, 1_000)
            rng = random.Random(seat)
            sat = await http.post(
                f"{rng.choice((a.url, b.url))}/api/v1/tables/{table['id']}/seats",
                json={"seat": seat, "buy_in": "100"},
                headers=bearer(player),
            )
            assert sat.status_code == 201, sat.text
            left = await http.delete(
                f"{rng.choice((a.url, b.url))}/api/v1/tables/{table['id']}/seats/me", headers=bearer(player)
            )
            assert left.status_code == 200, left.text

        for _ in range(2):
            await asyncio.gather(*(churn(seat, str(uuid.uuid4())) for seat in range(2, 10)))
            async with asyncio.timeout(60):
                while len((await http.get(f"{a.url}/api/v1/tables/{table['id']}")).json()["players"]) > 2:  # noqa: ASYNC110
                    await asyncio.sleep(0.1)
        for task in playing:
            task.cancel()
        await asyncio.gather(*playing, return_exceptions=True)
        for bot in bots:
            await bot.close()
    for name, task in watchers.items():
        assert not task.done(), f"the watcher {name} stopped early: {task}"
    for task in watchers.values():
        task.cancel()
    await asyncio.gather(*watchers.values(), return_exceptions=True)
    counts = {name: check_order(messages, name) for name, messages in watched.items()}
    for bot in bots:
        check_order(bot.received, f"bot {bot.player_id}")
    assert min(counts.values()) > 30, counts
    joined = [m for m in watched["on B"] if m["type"] == "player-joined"]
    assert len(joined) >= 16, "every sit-down announced"
