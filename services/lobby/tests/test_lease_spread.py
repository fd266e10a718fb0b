"""Leases spread across instances: two lobby processes, eight tables whose players all sit down through the
first one. Wanting to deal there, it took each table's lease at once, while the other, renewing every few
seconds, found them taken (it got only a table caught mid-buy-in, if any); now each runs about half."""

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

TABLES = 8


async def test_two_instances_share_the_tables_between_them(
    start_lobby: Any, make_database: Any, ledger: Ledger, redis: Redis, run_id: str
) -> None:
    database_url = await make_database("lobby_spread")
    namespace = f"test-{run_id}-spread-{uuid.uuid4().hex[:6]}"  # the live instances counted are these two
    # Slow rounds: between two of them, the instance the seats change on is the only one asking for leases.
    options = {"between_hands_s": "0.05", "lease_renew_s": "3", "lease_ttl_s": "9", "redis_namespace": namespace}
    a: LobbyProcess = await start_lobby(database_url, instance_id="a", **options)
    await start_lobby(database_url, instance_id="b", **options)
    prefix = f"{namespace}:lobby:lobby"
    async with asyncio.timeout(30):
        while await redis.zcard(f"{prefix}:instances") < 2:  # noqa: ASYNC110 - other processes' state
            await asyncio.sleep(0.05)
    async with httpx.AsyncClient(base_url=a.url, timeout=30) as http:
        tables = [(await new_table(http, seats=2, action_clock_s=5, time_bank_s=0))["id"] for _ in range(TABLES)]
        for table_id in tables:
            for seat in range(2):
                player = str(uuid.uuid4())
                await ledger.fund(player, 1_000)
                sat = await http.post(
                    f"/api/v1/tables/{table_id}/seats", json={"seat": seat, "buy_in": "200"}, headers=bearer(player)
                )
                assert sat.status_code == 201, sat.text

        # Nobody acts: each table's first hand waits on its clock, kept by whichever instance took its lease.
        async def settled() -> tuple[list[str | None], int]:
            async with engine.connect() as connection:
                dealt = await connection.scalar(
                    text("SELECT count(*) FROM cash_tables WHERE id = ANY(:ids) AND hands_dealt > 0"),
                    {"ids": [uuid.UUID(t) for t in tables]},
                )
            return [await redis.get(f"{prefix}:lease:{t}") for t in tables], dealt

        engine = create_async_engine(database_url)
        try:
            async with asyncio.timeout(60):
                while True:
                    found, dealt = await settled()
                    if None not in found and dealt == TABLES:
                        break
                    await asyncio.sleep(0.1)
        finally:
            await engine.dispose()
    per_instance = Counter(value.split(":")[0] for value in found if value is not None)
    assert per_instance["a"] >= 3, per_instance
    assert per_instance["b"] >= 3, per_instance
