"""Lease hand-back: an instance that joins late gets its share. Instance A runs six tables alone (their hands
end on the clock every second or so); B starts. A holds more than its share now, and hands the excess
back between hands (after a hand is settled, before the next deal); B takes them at its next rounds and
deals their next hands. Without hand-back A would keep all six and B run none."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from typing import Any

import httpx
from lobby_support import Ledger, LobbyProcess, bearer, new_table
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

TABLES = 6


async def test_a_late_instance_gets_its_share_handed_back_between_hands(
    start_lobby: Any, make_database: Any, ledger: Ledger, redis: Redis, run_id: str
) -> None:
    database_url = await make_database("lobby_handback")
    namespace = f"test-{run_id}-handback-{uuid.uuid4().hex[:6]}"
    # Nobody connects: no sit-out for the absent players during the test.
    options = {"between_hands_s": "0.2", "disconnect_grace_s": "600", "redis_namespace": namespace}
    prefix = f"{namespace}:lobby:lobby"
    a: LobbyProcess = await start_lobby(database_url, instance_id="a", **options)
    engine = create_async_engine(database_url)

    async def holders() -> Counter[str]:
        found = [await redis.get(f"{prefix}:lease:{t}") for t in tables]
        return Counter(value.split(":")[0] for value in found if value is not None)

    async def dealt() -> dict[str, int]:
        async with engine.connect() as connection:
            rows = await connection.execute(
                text("SELECT id::text, hands_dealt FROM cash_tables WHERE id = ANY(:ids)"),
                {"ids": [uuid.UUID(t) for t in tables]},
            )
            return dict(rows.tuples().all())

    try:
        async with httpx.AsyncClient(base_url=a.url, timeout=30) as http:
            # Nobody connects: every turn times out (check, else fold), so hands end on the clock.
            tables = [(await new_table(http, seats=2, action_clock_s=1, time_bank_s=0))["id"] for _ in range(TABLES)]
            for table_id in tables:
                for seat in range(2):
                    player = str(uuid.uuid4())
                    await ledger.fund(player, 1_000)
                    sat = await http.post(
                        f"/api/v1/tables/{table_id}/seats", json={"seat": seat, "buy_in": "200"}, headers=bearer(player)
                    )
                    assert sat.status_code == 201, sat.text
        async with asyncio.timeout(60):
            while (await holders())["a"] < TABLES or min((await dealt()).values()) < 2:  # noqa: ASYNC110
                await asyncio.sleep(0.2)

        await start_lobby(database_url, instance_id="b", **options)
        async with asyncio.timeout(60):
            while (await holders())["b"] < TABLES // 2:  # noqa: ASYNC110 - other processes' state
                await asyncio.sleep(0.2)
        counts = await holders()
        assert counts["a"] == TABLES // 2, counts
        assert counts["b"] == TABLES // 2, counts

        # B runs them: their next hands are dealt (by B, the holder), on every table.
        before = await dealt()
        async with asyncio.timeout(60):
            while any(n < before[t] + 2 for t, n in (await dealt()).items()):  # noqa: ASYNC110
                await asyncio.sleep(0.2)
        async with engine.connect() as connection:
            open_hands = await connection.scalar(
                text("SELECT count(*) FROM hands h JOIN cash_tables t ON t.id = h.table_id "
                     "WHERE t.id = ANY(:ids) AND h.status = 'running' AND h.id <> t.current_hand_id"),
                {"ids": [uuid.UUID(t) for t in tables]},
            )  # fmt: skip
        assert open_hands == 0, "no hand was left half-played by the hand-back"
    finally:
        await engine.dispose()
