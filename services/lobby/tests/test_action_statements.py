"""The hot path of a table (ADR 0012): an accepted action is one statement on an autocommit connection
(no BEGIN, no COMMIT, no read), committed before anyone hears of it; when another writer moved the table
behind the runner's back, that statement writes nothing and the locked path writes the action once."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import asyncpg
from litestar.testing import AsyncTestClient
from lobby_support import Ledger, bearer, new_table
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine
from tablium_lobby.db.models import HandRecord
from tablium_lobby.domain.protocol import hand_view
from tablium_lobby.services.hand_log import committed_hand
from tablium_lobby.services.hydration import table_state
from tablium_lobby.services.runner import TableRunner

from tablium_poker import Hand


async def in_app(client: AsyncTestClient, work: Callable[[], Awaitable[Any]]) -> Any:
    """Run ``work`` on the app's event loop (the test client serves the app from a loop of its own)."""
    return await asyncio.to_thread(client.blocking_portal.call, work)


@contextmanager
def statements(engine: AsyncEngine) -> Iterator[list[tuple[str, str | None]]]:
    """The statements this task sends to Postgres meanwhile (not the app's background work), with the
    isolation level of their connection: through SQLAlchemy, and straight on the driver (the hot path's
    lanes: outside a transaction, a statement is its own, autocommitted)."""
    seen: list[tuple[str, str | None]] = []
    task = asyncio.current_task()

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if asyncio.current_task() is task:
            seen.append((" ".join(statement.split()), conn.get_execution_options().get("isolation_level")))

    fetchrow = asyncpg.Connection.fetchrow

    async def fetchrow_seen(self: asyncpg.Connection, query: str, *args: Any, **kwargs: Any) -> Any:
        if asyncio.current_task() is task:
            seen.append((" ".join(query.split()), None if self.is_in_transaction() else "AUTOCOMMIT"))
        return await fetchrow(self, query, *args, **kwargs)

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    asyncpg.Connection.fetchrow = fetchrow_seen  # type: ignore[method-assign]
    try:
        yield seen
    finally:
        asyncpg.Connection.fetchrow = fetchrow  # type: ignore[method-assign]
        event.remove(engine.sync_engine, "before_cursor_execute", record)


async def seated_table(client: AsyncTestClient, ledger: Ledger) -> TableRunner:
    table = await new_table(client)
    for seat in (1, 2):
        player = str(uuid.uuid4())
        await ledger.fund(player, 1_000)
        sat = await client.post(
            f"/api/v1/tables/{table['id']}/seats", json={"seat": seat, "buy_in": "200"}, headers=bearer(player)
        )
        assert sat.status_code == 201, sat.text
    runner: TableRunner = client.app.state.dealer.runner(uuid.UUID(table["id"]))
    for _ in range(200):  # the deal follows the second sit-down
        if runner.hand is not None and runner.seq_seen >= 0:
            return runner
        await asyncio.sleep(0.05)
    raise AssertionError("no hand was dealt")


async def act_for_actor(runner: TableRunner) -> None:
    hand = runner.hand
    assert hand is not None
    assert hand.actor_seat is not None
    async with runner.lock:  # wait for the deal's commit to settle (seq_seen is the committed seq)
        seq = runner.seq_seen
    action = "check" if hand.legal_actions().check else "call"
    await runner.act(runner.players[hand.actor_seat], action, None, seq)


async def committed(engine: AsyncEngine, runner: TableRunner) -> tuple[int, int]:
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT t.seq, (SELECT count(*) FROM hand_actions a WHERE a.hand_id = t.current_hand_id) "
                    "FROM cash_tables t WHERE t.id = :id"
                ),
                {"id": runner.table_id},
            )
        ).one()
    return int(row[0]), int(row[1])


async def test_an_accepted_action_is_one_autocommitted_statement(client: AsyncTestClient, ledger: Ledger) -> None:
    runner = await seated_table(client, ledger)
    engine: AsyncEngine = runner.dealer.sessions.kw["bind"]

    async def act() -> tuple[list[tuple[str, str | None]], tuple[int, int]]:
        with statements(engine) as seen:
            await act_for_actor(runner)
        return seen, await committed(engine, runner)

    seen, after = await in_app(client, act)
    assert len(seen) == 1, seen
    sql, isolation = seen[0]
    assert sql.startswith("WITH moved AS ( UPDATE cash_tables")
    assert isolation == "AUTOCOMMIT"
    assert after == (runner.seq_seen, 1)


async def test_a_table_moved_behind_the_cache_falls_back_to_the_locked_path(
    client: AsyncTestClient, ledger: Ledger
) -> None:
    runner = await seated_table(client, ledger)
    engine: AsyncEngine = runner.dealer.sessions.kw["bind"]

    async def act() -> tuple[int, list[tuple[str, str | None]], tuple[int, int]]:
        async with runner.lock, engine.begin() as conn:  # another instance's commit (a seat change, say)
            await conn.execute(text("UPDATE cash_tables SET seq = seq + 1 WHERE id = :id"), {"id": runner.table_id})
        moved_to = runner.seq_seen + 1
        with statements(engine) as seen:
            await act_for_actor(runner)
        return moved_to, seen, await committed(engine, runner)

    moved_to, seen, after = await in_app(client, act)
    assert seen[0][0].startswith("WITH moved AS")  # tried on the cache, wrote nothing
    assert any("FOR UPDATE" in sql for sql, _ in seen[1:])  # then read under the row lock and written
    assert after == (moved_to + 1, 1)
    assert runner.seq_seen == moved_to + 1


async def test_the_hand_rebuilt_from_its_action_rows_is_the_one_committed(
    client: AsyncTestClient, ledger: Ledger
) -> None:
    """The hot path writes an action's row, not the hand's whole state: whoever reads the hand afterwards
    (a takeover, a cold cache, a snapshot) replays the rows above the saved state and gets the same hand."""
    runner = await seated_table(client, ledger)

    async def play() -> tuple[dict[str, Any], tuple[int, int], dict[str, Any], dict[str, Any] | None]:
        for _ in range(3):  # check/call heads-up: the hand reaches the turn, not its end
            await act_for_actor(runner)
        async with runner.lock:
            assert runner.hand is not None
            assert not runner.hand.is_finished
            cached = runner.hand.to_dict()
            async with runner.dealer.sessions() as session:
                record = await session.get(HandRecord, runner.hand_id)
                assert record is not None
                rebuilt = (await committed_hand(session, record)).to_dict()
                saved = (record.actions, record.state_actions)
        snapshot = await table_state(runner.dealer.sessions, runner.table_id, None)
        return cached, saved, rebuilt, snapshot["hand"]

    cached, saved, rebuilt, snapshot = await in_app(client, play)
    assert saved == (3, 0)  # three actions recorded, the saved state still the deal's
    assert rebuilt == cached
    hand = Hand.from_dict(cached)
    assert snapshot is not None
    assert snapshot == {**snapshot, **hand_view(hand, None, runner.players)}
