"""The time bank refills: +time_bank_refill_s every time_bank_refill_hands hands a seat is dealt into, never
beyond the table's time_bank_s. Heads-up, nobody acting: the small blind (the button) is timed out each hand,
after spending all its time bank."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import httpx
import websockets
from lobby_support import Ledger, LobbyProcess, bearer, new_table
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine


async def test_the_time_bank_refills_every_few_hands_up_to_the_initial_bank(
    start_lobby: Any, make_database: Any, ledger: Ledger
) -> None:
    database_url = await make_database("lobby_time_bank")
    lobby: LobbyProcess = await start_lobby(database_url, between_hands_s="0.05")
    x, y = str(uuid.uuid4()), str(uuid.uuid4())
    async with httpx.AsyncClient(base_url=lobby.url, timeout=30) as http:
        table = await new_table(
            http, seats=2, action_clock_s=1, time_bank_s=3, time_bank_refill_s=1, time_bank_refill_hands=1
        )
        assert (table["time_bank_refill_s"], table["time_bank_refill_hands"]) == (1, 1)
        path = f"{lobby.ws_url}/api/v1/tables/{table['id']}/ws"
        async with (
            websockets.connect(path, additional_headers=bearer(x)) as x_socket,
            websockets.connect(path, additional_headers=bearer(y)),
        ):
            for seat, player in enumerate((x, y)):
                await ledger.fund(player, 1_000)
                sat = await http.post(
                    f"/api/v1/tables/{table['id']}/seats",
                    json={"seat": seat, "buy_in": "200"},
                    headers=bearer(player),
                )
                assert sat.status_code == 201, sat.text
            received: list[dict[str, Any]] = []
            async with asyncio.timeout(90):
                while sum(m["type"] == "round-result" for m in received) < 4:
                    received.append(json.loads(await x_socket.recv()))
    # The first turn of each hand: whose, and the time bank it had.
    first_turns: list[tuple[str, int]] = []
    in_hand = False
    for m in received:
        if m["type"] == "hand-start":
            in_hand = True
        elif m["type"] == "turn" and in_hand:
            first_turns.append((m["userId"], m["timeBankMs"]))
            in_hand = False
    # x spends 3 s in hand 1, gets 1 s back after hands 1 and 2; y's full bank stays at 3 s (the cap) after
    # hand 1, then spent in hand 2 and refilled by 1 s after hands 2 and 3.
    assert first_turns[:4] == [(x, 3000), (y, 3000), (x, 2000), (y, 2000)], first_turns
    assert sum(m["type"] == "time-bank" for m in received) >= 4, "each spent its bank"
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(
                text("SELECT player_id::text AS player, time_bank_ms FROM seats WHERE table_id = :t"),
                {"t": table["id"]},
            )
            banks = {row.player: row.time_bank_ms for row in rows}
    finally:
        await engine.dispose()
    assert all(0 <= bank <= 3000 for bank in banks.values()), banks
