"""One lobby instance with two worker processes (TABLIUM_LOBBY_WORKERS=2): each is a lease participant of
its own, named within the instance; the tables spread over them, a table's sockets land on either, and an
action for a table the sibling holds is handed to it (services/forward.py). Hands are played to the end
on every table, in commit order, hole cards only to their owners, and the chips come back whole."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import Counter
from typing import Any

import httpx
from lobby_support import Ledger, LobbyProcess, bearer, new_table, user_token
from redis.asyncio import Redis
from tablium_lobby.bots import Bot
from tablium_lobby.settings import LobbySettings

TABLES = 4
HANDS = 3


def passive(legal: dict[str, Any], cards: str, rng: random.Random) -> tuple[str, int | None]:
    """Check or call: nobody goes broke (a table with one player left deals no more hands)."""
    return ("check" if legal["check"] else "call"), None


async def test_two_workers_share_the_tables_and_play_them(
    start_lobby: Any, make_database: Any, ledger: Ledger, run_id: str
) -> None:
    database_url = await make_database("lobby_workers")
    namespace = f"test-{run_id}-workers-{uuid.uuid4().hex[:6]}"
    lobby: LobbyProcess = await start_lobby(
        database_url, workers="2", instance_id="w", between_hands_s="0.05", redis_namespace=namespace
    )
    redis = Redis.from_url(LobbySettings.from_env("lobby", {}).redis_url, decode_responses=True)
    prefix = f"{namespace}:lobby:lobby"
    bots: list[Bot] = []
    try:
        async with asyncio.timeout(30):
            while await redis.zcard(f"{prefix}:instances") < 2:  # noqa: ASYNC110 - other processes' state
                await asyncio.sleep(0.05)
        workers = await redis.zrange(f"{prefix}:instances", 0, -1)
        assert len(workers) == 2, workers
        assert all(w.startswith("w.") for w in workers), workers
        async with httpx.AsyncClient(base_url=lobby.url, timeout=30) as http:
            tables = [(await new_table(http, seats=2, rake_bps=500))["id"] for _ in range(TABLES)]
            for i, table_id in enumerate(tables):
                for seat in range(2):
                    player = str(uuid.uuid4())
                    bot = Bot(
                        f"{lobby.ws_url}/api/v1/tables/{table_id}/ws",
                        user_token(player),
                        player,
                        passive,
                        rng=random.Random(i * 2 + seat),
                    )
                    bots.append(bot)
                    await ledger.fund(player, 1_000)
                    await bot.connect()
                    sat = await http.post(
                        f"/api/v1/tables/{table_id}/seats", json={"seat": seat, "buy_in": "200"}, headers=bearer(player)
                    )
                    assert sat.status_code == 201, sat.text
            await asyncio.gather(*(bot.play(HANDS, timeout_s=90) for bot in bots))
            holders: Counter[str] = Counter()
            for table_id in tables:
                value = await redis.get(f"{prefix}:lease:{table_id}")
                assert value is not None
                holders[value.split(":")[0]] += 1
            assert set(holders) <= set(workers)
            assert len(holders) == 2, f"both workers hold tables: {holders}"
            for bot in bots:
                assert bot.hands_ended >= HANDS, bot.received[-4:]
                seqs = [m["seq"] for m in bot.received if isinstance(m.get("seq"), int)]
                assert seqs == sorted(seqs), "in commit order, whichever worker wrote it"
                seat = 0 if bots.index(bot) % 2 == 0 else 1
                cards = {m["seat"] for m in bot.received if m["type"] == "new-player-card"}
                assert cards <= {seat}, "hole cards only to their owner"
                failed = [m for m in bot.received if m["type"] == "error" and "recorded" in m.get("error", "")]
                assert not failed, "every action recorded, whichever worker holds the socket"
            playing = [asyncio.create_task(bot.play(10**6, timeout_s=60)) for bot in bots]
            for i, table_id in enumerate(tables):
                for bot in bots[i * 2 : i * 2 + 2]:
                    left = await http.delete(f"/api/v1/tables/{table_id}/seats/me", headers=bearer(bot.player_id))
                    assert left.status_code == 200, left.text
            async with asyncio.timeout(30):
                for table_id in tables:
                    while (await http.get(f"/api/v1/tables/{table_id}")).json()["players"]:  # noqa: ASYNC110
                        await asyncio.sleep(0.1)
            for task in playing:
                task.cancel()
            await asyncio.gather(*playing, return_exceptions=True)
        for table_id in tables:
            escrow = await ledger.account(f"table:{table_id}", "table_escrow")
            async with asyncio.timeout(30):
                while await ledger.balance(escrow) != 0:  # noqa: ASYNC110 - cash-outs after the hand
                    await asyncio.sleep(0.1)
    finally:
        for bot in bots:
            await bot.close()
        await redis.aclose()
