"""A lobby process SIGKILLed mid-hand: a new process on the same database takes the table over from the last
committed action; play goes on, nothing is lost or applied twice, and every chip is accounted for."""

from __future__ import annotations

import asyncio
import random
import uuid
from typing import Any

import httpx
from lobby_support import Ledger, LobbyProcess, bearer, new_table, user_token
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from tablium_lobby.bots import POLICIES, Bot

FUNDS = 5_000


async def test_a_killed_lobby_is_taken_over_from_the_database(
    start_lobby: Any, make_database: Any, ledger: Ledger
) -> None:
    database_url = await make_database("lobby_recovery")
    first: LobbyProcess = await start_lobby(database_url, between_hands_s="0.02")
    players = [str(uuid.uuid4()) for _ in range(3)]
    rake_account = await ledger.account("house", "house_rake")
    rake_before = await ledger.balance(rake_account)
    async with httpx.AsyncClient(base_url=first.url, timeout=30) as http:
        table = await new_table(http, seats=3, action_clock_s=30, rake_bps=500)
        ws = f"{first.ws_url}/api/v1/tables/{table['id']}/ws"
        bots = [Bot(ws, user_token(p), p, POLICIES["random"], rng=random.Random(i)) for i, p in enumerate(players)]
        for seat, bot in enumerate(bots):
            await ledger.fund(bot.player_id, FUNDS)
            await bot.connect()
            sat = await http.post(
                f"/api/v1/tables/{table['id']}/seats",
                json={"seat": seat, "buy_in": "200"},
                headers=bearer(bot.player_id),
            )
            assert sat.status_code == 201, sat.text
        playing = [asyncio.create_task(bot.play(10**6, timeout_s=60)) for bot in bots]
        async with asyncio.timeout(30):
            while min(bot.hands_ended for bot in bots) < 2:  # noqa: ASYNC110 - bots run in tasks
                await asyncio.sleep(0.02)
        # Stop the bots, so the next hand waits mid-way for its actor; then kill the lobby at once.
        for task in playing:
            task.cancel()
        await asyncio.gather(*playing, return_exceptions=True)
        await asyncio.sleep(0.3)
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            running = (await connection.execute(text("SELECT id, actions FROM hands WHERE status = 'running'"))).first()
        first.kill()
        first.process.wait(timeout=10)
        for bot in bots:
            await bot.close()
        assert running is not None, "a hand was in progress when the lobby died"

        second: LobbyProcess = await start_lobby(database_url, between_hands_s="0.02")
        ws = f"{second.ws_url}/api/v1/tables/{table['id']}/ws"
        bots = [Bot(ws, user_token(p), p, POLICIES["random"], rng=random.Random(9 + i)) for i, p in enumerate(players)]
        for bot in bots:
            await bot.connect()
        await asyncio.gather(*(bot.play(2, timeout_s=60) for bot in bots))
        async with engine.connect() as connection:
            resumed = (
                await connection.execute(text("SELECT status, actions FROM hands WHERE id = :id"), {"id": running.id})
            ).one()
            numbers = [
                row.number
                for row in await connection.execute(
                    text("SELECT number FROM hand_actions WHERE hand_id = :id ORDER BY number"), {"id": running.id}
                )
            ]
        assert resumed.status in ("finished", "settled"), "the interrupted hand was played to its end"
        assert resumed.actions > running.actions
        assert numbers == list(range(1, resumed.actions + 1)), "every action once, in order"

        async with httpx.AsyncClient(base_url=second.url, timeout=30) as http:
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
    finally:
        await engine.dispose()
    escrow = await ledger.account(f"table:{table['id']}", "table_escrow")
    async with asyncio.timeout(15):
        while await ledger.balance(escrow) != 0:  # noqa: ASYNC110 - another process's state
            await asyncio.sleep(0.1)
    rake = await ledger.balance(rake_account) - rake_before
    balances = [await ledger.player_balance(p) for p in players]
    assert sum(balances) + rake == FUNDS * len(players), (balances, rake)
