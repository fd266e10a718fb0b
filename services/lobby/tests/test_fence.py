"""The fence itself: a holder whose epoch the table no longer has writes nothing, even with its clock due.

In-process (the test reaches the app's dealer): another instance taking the lease is simulated by bumping
the table's ``lease_epoch`` as its takeover would; the former holder's clock, made due at once, would
spend the actor's time bank (the running hand and its cache look current to it) but finds a newer epoch
under the row lock and gives the table up without writing.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from litestar.testing import AsyncTestClient
from lobby_support import Ledger, bearer, new_table
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from tablium_lobby.services.dealer import Dealer
from tablium_lobby.settings import LobbySettings


async def test_a_holder_whose_epoch_moved_on_writes_nothing(
    client: AsyncTestClient[Any], settings: LobbySettings, ledger: Ledger
) -> None:
    table = await new_table(client, seats=2, action_clock_s=60, time_bank_s=30)
    for seat in range(2):
        player = str(uuid.uuid4())
        await ledger.fund(player, 1_000)
        sat = await client.post(
            f"/api/v1/tables/{table['id']}/seats", json={"seat": seat, "buy_in": "200"}, headers=bearer(player)
        )
        assert sat.status_code == 201, sat.text
    dealer: Dealer = client.app.state.dealer
    runner = dealer.runner(uuid.UUID(table["id"]))
    async with asyncio.timeout(10):
        while runner.hand is None or runner.epoch is None:  # noqa: ASYNC110 - the app's own tasks
            await asyncio.sleep(0.02)
    held = runner.epoch
    engine = create_async_engine(settings.database_url)
    try:
        async with engine.begin() as connection:
            # Another instance took the lease: its takeover bumped the epoch.
            await connection.execute(
                text("UPDATE cash_tables SET lease_epoch = lease_epoch + 1 WHERE id = :t"), {"t": table["id"]}
            )
            before = (
                await connection.execute(
                    text("SELECT seq, lease_epoch FROM cash_tables WHERE id = :t"), {"t": table["id"]}
                )
            ).one()
        runner.deadline_ms = 0  # the clock is due now (a pause ran past the deadline)
        runner._rearm.set()
        async with asyncio.timeout(10):
            while runner.epoch == held:  # noqa: ASYNC110
                await asyncio.sleep(0.02)
        async with engine.connect() as connection:
            after = (
                await connection.execute(
                    text(
                        "SELECT t.seq, h.actions, h.deadline, s.time_bank_ms FROM cash_tables t "
                        "JOIN hands h ON h.id = t.current_hand_id JOIN seats s ON s.table_id = t.id "
                        "WHERE t.id = :t ORDER BY s.seat_no"
                    ),
                    {"t": table["id"]},
                )
            ).all()
    finally:
        await engine.dispose()
    assert runner.epoch is None, "the former holder gave the table up"
    assert after[0].seq == before.seq, "nothing written: no time bank spent, no time-out"
    assert after[0].actions == 0
    assert [row.time_bank_ms for row in after] == [30_000, 30_000]
