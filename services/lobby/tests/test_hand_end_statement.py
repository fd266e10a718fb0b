"""The hand's end on the hot path (ADR 0012, seventh pass): the hand's last action, the hand finished, the
seats' stacks and time banks and ``lobby.hand_completed`` in one conditional statement (db/actions.py
``FINISH_HAND``), committing the same rows as the locked path's ORM ``finish_hand``; when the table moved
behind the cache it writes nothing and the locked path ends the hand once."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from lobby_support import Ledger
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from tablium_lobby.domain.actions import apply_action
from tablium_lobby.domain.protocol import Outgoing
from tablium_lobby.services.runner import TableRunner
from tablium_lobby.services.stages import ActionClock
from tablium_lobby.services.tables import get_table
from test_action_statements import act_for_actor, in_app, seated_table, statements

from tablium_kit.messaging.outbox import subscribe_commits, unsubscribe_commits
from tablium_poker import Hand

# Columns that differ by when (or by which random id) a write ran, not by what it wrote.
_WHEN = {"finished_at", "updated_at", "created_at", "published_at", "attempts", "seq_outbox"}


def _last_action(hand: Hand) -> str:
    """The check/call the bench's and the tests' heads-up players make."""
    return "check" if hand.legal_actions().check else "call"


def _ends_the_hand(hand: Hand) -> bool:
    probe = Hand.from_dict(hand.to_dict())
    seat = probe.actor_seat
    assert seat is not None
    apply_action(probe, seat, _last_action(probe), None)
    return probe.is_finished


async def _rows(conn: AsyncConnection, table_id: uuid.UUID, hand_id: uuid.UUID) -> dict[str, Any]:
    """Everything the hand's end writes, as committed (or as seen in the writing transaction)."""

    async def all_of(sql: str) -> list[dict[str, Any]]:
        result = await conn.execute(text(sql), {"table_id": table_id, "hand_id": hand_id, "hand": str(hand_id)})
        return [dict(row) for row in result.mappings()]

    events = await all_of(
        "SELECT id, seq AS seq_outbox, type, subject, envelope, headers, created_at, published_at, attempts "
        "FROM outbox WHERE type = 'lobby.hand_completed' AND envelope->'data'->>'hand_id' = :hand"
    )
    return {
        "table": await all_of("SELECT * FROM cash_tables WHERE id = :table_id"),
        "hand": await all_of("SELECT * FROM hands WHERE id = :hand_id"),
        "actions": await all_of("SELECT * FROM hand_actions WHERE hand_id = :hand_id ORDER BY number"),
        "seats": await all_of("SELECT * FROM seats WHERE table_id = :table_id ORDER BY seat_no, created_at"),
        "events": events,
    }


def _what(rows: dict[str, Any]) -> dict[str, Any]:
    """The rows without their instants, the event's id and time (new each write)."""
    out: dict[str, Any] = {}
    for name, found in rows.items():
        kept = []
        for row in found:
            row = {k: v for k, v in row.items() if k not in _WHEN}
            if name == "events":
                row.pop("id")
                row["envelope"] = {k: v for k, v in row["envelope"].items() if k not in ("id", "time")}
            kept.append(row)
        out[name] = kept
    return out


async def _orm_end(runner: TableRunner, player: str, action: str, seq: int) -> tuple[dict[str, Any], list[Outgoing]]:
    """The same last action through the locked path's ORM write (another runner, loaded from the committed
    state), its rows read in its transaction, which is then rolled back."""
    other = TableRunner(runner.dealer, runner.table_id)
    session = runner.dealer.sessions()
    try:
        await session.begin()
        table = await get_table(session, runner.table_id, lock=True)
        await other._load(session, table)
        assert other.hand is not None
        assert runner.hand is not None
        assert other.hand.to_dict() == runner.hand.to_dict()  # the same hand, read from the database
        move = other._decide(player, action, None, seq, table.seq, None)
        messages = await other._write(session, table, move)
        await session.flush()
        assert other.hand_id is not None
        rows = await _rows(await session.connection(), runner.table_id, other.hand_id)
        await session.rollback()
    finally:
        await session.close()
    return rows, messages


@pytest.mark.parametrize(("seat_changed_hands", "grouped"), [(False, False), (True, False), (False, True)])
async def test_the_hand_end_statement_commits_what_the_orm_commits(
    client: AsyncTestClient, ledger: Ledger, seat_changed_hands: bool, grouped: bool
) -> None:
    """``grouped``: with group commits on, the statement runs in the group's transaction (SQLAlchemy)."""
    runner = await seated_table(client, ledger)
    engine: AsyncEngine = runner.dealer.sessions.kw["bind"]

    async def play() -> tuple[Any, ...]:
        # A refill at this hand's end, capped for one seat (5 s + 7 s; 28 s + 7 s capped at 30 s).
        async with runner.lock, engine.begin() as conn:
            await conn.execute(
                text(
                    "UPDATE cash_tables SET time_bank_refill_hands = 1, time_bank_refill_s = 7, time_bank_s = 30 "
                    "WHERE id = :id"
                ),
                {"id": runner.table_id},
            )
            await conn.execute(
                text(
                    "UPDATE seats SET time_bank_ms = CASE seat_no WHEN 1 THEN 5000 ELSE 28000 END "
                    "WHERE table_id = :id AND status = 'seated'"
                ),
                {"id": runner.table_id},
            )
            if seat_changed_hands:  # seat 2's row now holds someone not dealt in: its stack is not theirs
                await conn.execute(
                    text("UPDATE seats SET player_id = :other WHERE table_id = :id AND seat_no = 2"),
                    {"id": runner.table_id, "other": uuid.uuid4()},
                )
        for _ in range(40):
            assert runner.hand is not None
            if _ends_the_hand(runner.hand):
                break
            await act_for_actor(runner)
        hand = runner.hand
        assert hand is not None
        assert hand.actor_seat is not None
        async with runner.lock:
            seq, hand_id = runner.seq_seen, runner.hand_id
            assert hand_id is not None
            player, action = runner.players[hand.actor_seat], _last_action(hand)
            before = await _read(engine, runner.table_id, hand_id)
            orm_rows, orm_messages = await _orm_end(runner, player, action, seq)
            assert await _read(engine, runner.table_id, hand_id) == before  # rolled back: nothing of it left
            clock = ActionClock(time.time())
            woken: list[int] = []

            def wake() -> None:  # as the app's relay is: told of the event's commit
                woken.append(1)

            subscribe_commits(wake)
            runner.dealer.group.enabled = grouped
            try:
                with statements(engine) as seen:
                    # The runner's own hot path (the lock held, as act() holds it), without what follows
                    # the hand (its settlement would move the row on while it is read).
                    messages = await runner._act_on_cache(player, action, None, seq, clock)
            finally:
                runner.dealer.group.enabled = False
                unsubscribe_commits(wake)
            after = await _read(engine, runner.table_id, hand_id)
        return before, orm_rows, orm_messages, seen, clock.path, messages, after, seq, woken

    before, orm_rows, orm_messages, seen, path, messages, after, seq, woken = await in_app(client, play)
    assert path == "end"
    assert woken  # the outbox's relays were woken after the commit, as after outbox.add's
    assert messages is not None
    sent = [sql for sql, _ in seen if sql.startswith("WITH")]
    assert len(sent) == 1
    assert sent[0].startswith("WITH moved AS ( UPDATE cash_tables SET seq = seq + 1, current")
    if not grouped:
        assert seen == [(sent[0], "AUTOCOMMIT")]

    # What both wrote, the instants and the event's id and time aside: identical.
    assert _what(after) == _what(orm_rows)
    assert [(m.message, m.to) for m in messages] == [(m.message, m.to) for m in orm_messages]

    # And it is what a hand's end is (so the comparison is not of two empty writes).
    (table,) = after["table"]
    assert (table["seq"], table["current_hand_id"]) == (seq + 1, None)
    (hand_row,) = after["hand"]
    assert hand_row["status"] == "finished"
    assert hand_row["deadline"] is None
    assert hand_row["actions"] == hand_row["state_actions"] == len(after["actions"]) == len(before["actions"]) + 1
    assert hand_row["turn_seq"] == seq + 1
    assert hand_row["result"] is not None
    assert after["actions"][-1]["seq"] == seq + 1
    assert Hand.from_dict(hand_row["state"]).is_finished
    stacks = {p["player_id"]: int(p["stack_after"]) for p in hand_row["result"]["players"]}
    assert sum(stacks.values()) + int(hand_row["rake"]) == 400  # two buy-ins of 200
    seats_before = {s["id"]: s for s in before["seats"]}
    for seat in after["seats"]:
        old = seats_before[seat["id"]]
        if str(seat["player_id"]) in stacks:
            assert seat["stack"] == stacks[str(seat["player_id"])]
            assert seat["hands_played"] == old["hands_played"] + 1
            assert seat["time_bank_ms"] == {5000: 12000, 28000: 30000}[old["time_bank_ms"]]
            assert seat["updated_at"] == hand_row["finished_at"]
        else:
            assert seat_changed_hands
            assert seat == old  # not the dealt player's seat any more: untouched
    assert seat_changed_hands == (sum(str(s["player_id"]) in stacks for s in after["seats"]) == 1)
    (event,) = after["events"]
    (orm_event,) = orm_rows["events"]
    assert event["id"] != orm_event["id"]
    data = event["envelope"]["data"]
    assert data["seq"] == seq + 1
    assert data["hand_id"] == str(hand_row["id"])
    assert data["players"] == hand_row["result"]["players"]
    assert event["envelope"]["source"] == "/services/lobby"
    assert event["subject"] == str(runner.table_id)


async def _read(engine: AsyncEngine, table_id: uuid.UUID, hand_id: uuid.UUID) -> dict[str, Any]:
    async with engine.connect() as conn:
        return await _rows(conn, table_id, hand_id)


async def test_a_moved_table_ends_the_hand_once_on_the_locked_path(client: AsyncTestClient, ledger: Ledger) -> None:
    runner = await seated_table(client, ledger)
    engine: AsyncEngine = runner.dealer.sessions.kw["bind"]

    async def play() -> tuple[Any, ...]:
        for _ in range(40):
            assert runner.hand is not None
            if _ends_the_hand(runner.hand):
                break
            await act_for_actor(runner)
        hand_id = runner.hand_id
        assert hand_id is not None
        async with runner.lock, engine.begin() as conn:  # another instance's commit (a seat change, say)
            await conn.execute(text("UPDATE cash_tables SET seq = seq + 1 WHERE id = :id"), {"id": runner.table_id})
        moved_to = runner.seq_seen + 1
        with statements(engine) as seen:
            await act_for_actor(runner)
        return hand_id, moved_to, seen, await _read(engine, runner.table_id, hand_id)

    _hand_id, moved_to, seen, after = await in_app(client, play)
    assert seen[0][0].startswith("WITH moved AS ( UPDATE cash_tables SET seq = seq + 1, current_hand_id = NULL")
    assert any("FOR UPDATE" in sql for sql, _ in seen[1:])  # then read under the row lock and written
    (table,) = after["table"]
    assert table["seq"] >= moved_to + 1  # the next hand may be dealt meanwhile
    (hand_row,) = after["hand"]
    assert hand_row["status"] in ("finished", "settled")
    assert hand_row["turn_seq"] == moved_to + 1
    assert after["actions"][-1]["seq"] == moved_to + 1
    assert [a["number"] for a in after["actions"]] == list(range(1, hand_row["actions"] + 1))
    assert len(after["events"]) == 1
    assert after["events"][0]["envelope"]["data"]["seq"] == moved_to + 1
