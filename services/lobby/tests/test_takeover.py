"""Two processes at one table: a player on instance A plays with one on instance B; B is SIGKILLed mid-hand
right after committing an action (so B armed the clock for A's player); the hand goes on from the last
committed action (the absent players checked or folded), nothing lost or applied twice.

This checks the outcome (nothing lost or applied twice); that the hand waited for B's lease and that A
took it over under a new epoch is checked in test_lease.py."""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from typing import Any

import httpx
import websockets
from lobby_support import Ledger, LobbyProcess, bearer, new_table, user_token
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from tablium_lobby.bots import POLICIES, Bot


async def test_a_killed_instance_s_hand_is_taken_over_after_its_lease(
    start_lobby: Any, make_database: Any, ledger: Ledger
) -> None:
    database_url = await make_database("lobby_takeover")
    options = {"between_hands_s": "0.05", "lease_ttl_s": "1.5", "lease_renew_s": "0.3"}
    a: LobbyProcess = await start_lobby(database_url, **options)
    b: LobbyProcess = await start_lobby(database_url, **options)
    on_a, on_b = str(uuid.uuid4()), str(uuid.uuid4())
    async with httpx.AsyncClient(base_url=a.url, timeout=30) as http:
        table = await new_table(http, seats=2, action_clock_s=2, time_bank_s=0)
        path = f"/api/v1/tables/{table['id']}/ws"
        x = Bot(f"{a.ws_url}{path}", user_token(on_a), on_a, POLICIES["random"], rng=random.Random(1))
        y = Bot(f"{b.ws_url}{path}", user_token(on_b), on_b, POLICIES["random"], rng=random.Random(2))
        for seat, bot in enumerate((x, y)):
            await ledger.fund(bot.player_id, 1_000)
            await bot.connect()
            sat = await http.post(
                f"/api/v1/tables/{table['id']}/seats",
                json={"seat": seat, "buy_in": "200"},
                headers=bearer(bot.player_id),
            )
            assert sat.status_code == 201, sat.text
        await asyncio.gather(x.play(1, timeout_s=30), y.play(1, timeout_s=30))

        # From now on x (on A) does not act. Wait until y acted (committed by B, which armed the clock for
        # x's turn there), then kill B at once.
        async with websockets.connect(f"{a.ws_url}{path}", additional_headers=bearer(str(uuid.uuid4()))) as watcher:
            seen: list[dict[str, Any]] = []

            async def next_message() -> dict[str, Any]:
                message: dict[str, Any] = json.loads(await watcher.recv())
                seen.append(message)
                return message

            async def y_plays_until_x_is_to_act() -> None:
                while True:
                    raw = json.loads(await y.socket.recv())
                    await y.on_message(raw)
                    if raw.get("type") == "turn" and raw.get("userId") == on_a and "legal" not in raw:
                        last = [m for m in y.received if m["type"] == "action-broadcast"]
                        if last and last[-1]["userId"] == on_b:
                            return

            async with asyncio.timeout(60):
                await y_plays_until_x_is_to_act()
            b.kill()
            b.process.wait(timeout=10)
            engine = create_async_engine(database_url)
            try:
                async with engine.connect() as connection:
                    hand = (
                        await connection.execute(
                            text(
                                "SELECT h.id, h.actions FROM hands h JOIN cash_tables t ON t.current_hand_id = h.id "
                                "WHERE t.id = :t"
                            ),
                            {"t": table["id"]},
                        )
                    ).one()
                # A keeps the clock now: x is checked or folded, the hand ends, the next ones are dealt.
                async with asyncio.timeout(30):
                    while not any(m["type"] == "round-result" and m["handId"] == str(hand.id) for m in seen):
                        await next_message()
                async with engine.connect() as connection:
                    numbers = [
                        row.number
                        for row in await connection.execute(
                            text("SELECT number, automatic FROM hand_actions WHERE hand_id = :h ORDER BY number"),
                            {"h": hand.id},
                        )
                    ]
                    automatic = await connection.scalar(
                        text(
                            "SELECT count(*) FROM hand_actions WHERE hand_id = :h AND number > :n "
                            "AND automatic IS NOT NULL"
                        ),
                        {"h": hand.id, "n": hand.actions},
                    )
            finally:
                await engine.dispose()
            assert numbers == list(range(1, len(numbers) + 1)), "every action once, in order"
            assert automatic >= 1, "the clock A took over acted for the absent player"
        await x.close()
