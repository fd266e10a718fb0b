"""The lease decides who runs a table: two real lobby processes on one database and one Redis.

(a) The holder is SIGKILLed while a player connected to the other instance is to act and does not: the
hand waits (the other instance does not keep a clock it does not hold) until the lease's TTL passed and
the other instance took the lease; then exactly one time-out is committed, under the new epoch.
(b) The holder is paused (SIGSTOP) mid-hand: the hand waits out the lease, the other instance takes it
and plays on; woken (SIGCONT), the former holder writes nothing: its epoch is fenced off in the database.

Both fail with ``TABLIUM_LOBBY_LEASES=false`` (every instance keeping every clock): the hand moves at the
deadline while the holder's lease is still alive.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import uuid
from datetime import datetime, timedelta
from typing import Any

import httpx
import websockets
from lobby_support import Ledger, LobbyProcess, bearer, new_table, user_token
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from tablium_lobby.bots import POLICIES, Bot


def lease_key(run_id: str, table_id: str) -> str:
    return f"test-{run_id}:lobby:lobby:lease:{table_id}"


async def seat_players(http: httpx.AsyncClient, ledger: Ledger, table_id: str, players: list[str]) -> None:
    for seat, player in enumerate(players):
        await ledger.fund(player, 1_000)
        sat = await http.post(
            f"/api/v1/tables/{table_id}/seats", json={"seat": seat, "buy_in": "200"}, headers=bearer(player)
        )
        assert sat.status_code == 201, sat.text


async def current_hand(engine: AsyncEngine, table_id: str) -> Any:
    async with engine.connect() as connection:
        return (
            await connection.execute(
                text(
                    "SELECT h.id, h.actions, h.deadline, h.turn_seq, t.seq, t.lease_epoch, now() AS now "
                    "FROM cash_tables t JOIN hands h ON h.id = t.current_hand_id WHERE t.id = :t"
                ),
                {"t": table_id},
            )
        ).one()


async def actions_of(engine: AsyncEngine, hand_id: Any) -> int:
    async with engine.connect() as connection:
        count: int = await connection.scalar(text("SELECT actions FROM hands WHERE id = :h"), {"h": hand_id})
        return count


async def table_row(engine: AsyncEngine, table_id: str) -> Any:
    async with engine.connect() as connection:
        return (
            await connection.execute(
                text("SELECT seq, lease_epoch, current_hand_id, now() AS now FROM cash_tables WHERE id = :t"),
                {"t": table_id},
            )
        ).one()


async def wait_until_db_time(engine: AsyncEngine, moment: datetime) -> None:
    """Poll the database's clock (the one deadlines are written with) until ``moment`` is past."""
    async with asyncio.timeout(30):
        while True:
            async with engine.connect() as connection:
                if await connection.scalar(text("SELECT now()")) >= moment:
                    return
            await asyncio.sleep(0.1)


async def test_a_killed_holder_s_table_waits_for_its_lease_then_times_out_once(
    start_lobby: Any, make_database: Any, ledger: Ledger, redis: Redis, run_id: str
) -> None:
    database_url = await make_database("lobby_lease_kill")
    options = {"between_hands_s": "0.05", "lease_ttl_s": "8", "lease_renew_s": "0.3"}
    b: LobbyProcess = await start_lobby(database_url, instance_id="b", **options)
    x, y = str(uuid.uuid4()), str(uuid.uuid4())
    async with httpx.AsyncClient(base_url=b.url, timeout=30) as http:
        table = await new_table(http, seats=2, action_clock_s=2, time_bank_s=0)
        # Seated through B, which deals and so takes the lease; A starts once B holds it.
        await seat_players(http, ledger, table["id"], [x, y])
    a: LobbyProcess = await start_lobby(database_url, instance_id="a", **options)
    path = f"/api/v1/tables/{table['id']}/ws"
    y_bot = Bot(f"{b.ws_url}{path}", user_token(y), y, POLICIES["random"], rng=random.Random(3))
    engine = create_async_engine(database_url)
    try:
        # x is connected to A (so not sat out) and never acts; y plays on B.
        async with websockets.connect(f"{a.ws_url}{path}", additional_headers=bearer(x)) as x_socket:
            y_playing = asyncio.create_task(y_bot.play(10**6, timeout_s=120))
            async with asyncio.timeout(60):
                while True:
                    turn = json.loads(await x_socket.recv())
                    if turn["type"] == "turn" and turn.get("userId") == x and "legal" in turn:
                        break
            holder = await redis.get(lease_key(run_id, table["id"]))
            b.kill()
            y_playing.cancel()
            await asyncio.gather(y_playing, return_exceptions=True)
            stopped = await current_hand(engine, table["id"])
            assert stopped.turn_seq == turn["seq"], "x's turn was still open when B died"

            # Well past x's deadline the hand has not moved: B's lease is alive, and A does not keep the
            # clock of a table it does not hold (without leases, A's own clock acts at the deadline).
            await wait_until_db_time(engine, stopped.deadline + timedelta(seconds=1.5))
            waited = await table_row(engine, table["id"])
            still = await redis.get(lease_key(run_id, table["id"]))
            assert await actions_of(engine, stopped.id) == stopped.actions, "nobody acted for x under B's lease"
            assert waited.seq == stopped.seq, "nothing at all was written at the table under B's lease"
            assert holder is not None
            assert holder.startswith("b:"), holder
            assert still == holder, "the check above ran while B's lease was alive"

            # The lease expires; A takes it (a new epoch) and its clock times x out.
            async with asyncio.timeout(30):
                while await actions_of(engine, stopped.id) == stopped.actions:  # noqa: ASYNC110 - another process's state
                    await asyncio.sleep(0.1)
            seen: list[dict[str, Any]] = []
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5):
                    while not any(m["type"] == "turn" and m["seq"] > stopped.seq + 1 for m in seen):
                        seen.append(json.loads(await x_socket.recv()))
        taken = await redis.get(lease_key(run_id, table["id"]))
        assert taken is not None
        assert taken.startswith("a:"), taken
        epoch_b, epoch_a = int(holder.split(":")[1]), int(taken.split(":")[1])
        assert epoch_a > epoch_b
        assert (await table_row(engine, table["id"])).lease_epoch == epoch_a
        async with engine.connect() as connection:
            actions = (
                await connection.execute(
                    text(
                        "SELECT number, seq, seat, player_id, automatic, lease_epoch FROM hand_actions "
                        "WHERE hand_id = :h ORDER BY number"
                    ),
                    {"h": stopped.id},
                )
            ).all()
        assert [r.number for r in actions] == list(range(1, len(actions) + 1)), "every action once, in order"
        timed_out = actions[stopped.actions]
        assert str(timed_out.player_id) == x
        assert timed_out.automatic == "timeout"
        assert timed_out.lease_epoch == epoch_a, "written by A, under the epoch it took"
        # One time-out for x's turn, announced once, with the seq right after the turn's.
        assert timed_out.seq == stopped.seq + 1
        x_acts = [m for m in seen if m["type"] == "action-broadcast" and m["userId"] == x and m["seq"] > stopped.seq]
        assert [m["seq"] for m in x_acts][:1] == [stopped.seq + 1], seen
        assert len([m for m in x_acts if m["seq"] == stopped.seq + 1]) == 1, seen
    finally:
        await engine.dispose()


def _group_signal(lobby: LobbyProcess, sig: signal.Signals) -> None:
    os.killpg(lobby.process.pid, sig)


async def _lease_rounds(lobby: LobbyProcess) -> float:
    async with httpx.AsyncClient(timeout=5) as http:
        body = (await http.get(f"{lobby.url}/metrics")).text
    return sum(
        float(line.split()[-1]) for line in body.splitlines() if line.startswith("tablium_lobby_lease_rounds_total")
    )


async def test_a_paused_holder_writes_nothing_once_it_wakes(
    start_lobby: Any, make_database: Any, ledger: Ledger, redis: Redis, run_id: str
) -> None:
    database_url = await make_database("lobby_lease_pause")
    options = {"between_hands_s": "0.05", "lease_ttl_s": "6", "lease_renew_s": "0.3"}
    o: LobbyProcess = await start_lobby(database_url, instance_id="o", **options)
    x, y = str(uuid.uuid4()), str(uuid.uuid4())
    async with httpx.AsyncClient(base_url=o.url, timeout=30) as http:
        # Nobody acts: every turn is the clock's (a time bank refilled every hand, then a time-out), so a
        # holder waking with its clock overdue would have a time bank to spend and a player to act for.
        table = await new_table(
            http, seats=2, action_clock_s=1, time_bank_s=1, time_bank_refill_s=1, time_bank_refill_hands=1
        )
        await seat_players(http, ledger, table["id"], [x, y])
    n: LobbyProcess = await start_lobby(database_url, instance_id="n", **options)
    path = f"/api/v1/tables/{table['id']}/ws"
    engine = create_async_engine(database_url)
    received: list[dict[str, Any]] = []

    async def listen(socket: Any) -> None:
        async for raw in socket:
            received.append(json.loads(raw))

    try:
        async with (
            websockets.connect(f"{n.ws_url}{path}", additional_headers=bearer(x)) as x_socket,
            websockets.connect(f"{n.ws_url}{path}", additional_headers=bearer(y)) as y_socket,
        ):
            listening = asyncio.create_task(listen(x_socket))
            rounds_before = await _lease_rounds(o)
            async with asyncio.timeout(60):
                while not any(m["type"] == "turn" and m.get("timeBankMs", 0) > 0 for m in received[2:]):  # noqa: ASYNC110 - another process's state
                    await asyncio.sleep(0.02)
            holder = await redis.get(lease_key(run_id, table["id"]))
            _group_signal(o, signal.SIGSTOP)
            try:
                stopped = await current_hand(engine, table["id"])
                # Past the deadline and the time bank, nothing moved: the lease is O's until it expires.
                await wait_until_db_time(engine, stopped.deadline + timedelta(seconds=2))
                waited = await table_row(engine, table["id"])
                assert await actions_of(engine, stopped.id) == stopped.actions, "nobody acted under O's lease"
                assert waited.seq == stopped.seq, "nothing at all was written at the table under O's lease"
                assert holder is not None
                assert holder.startswith("o:"), holder
                assert await redis.get(lease_key(run_id, table["id"])) == holder

                # N takes the lease and plays on (time banks, time-outs, new hands).
                async with asyncio.timeout(30):
                    while (await table_row(engine, table["id"])).seq < stopped.seq + 6:  # noqa: ASYNC110 - another process's state
                        await asyncio.sleep(0.1)
                taken = await redis.get(lease_key(run_id, table["id"]))
                assert taken is not None
                assert taken.startswith("n:"), taken
            finally:
                _group_signal(o, signal.SIGCONT)
            # O wakes with its clock long overdue; give it a few lease rounds (it finds its lease gone).
            async with asyncio.timeout(30):
                while await _lease_rounds(o) < rounds_before + 4:  # noqa: ASYNC110 - another process's state
                    await asyncio.sleep(0.1)
            await x_socket.send(json.dumps({"type": "snapshot"}))
            async with asyncio.timeout(10):
                while not any(m["type"] == "snapshot" for m in received[2:]):  # noqa: ASYNC110 - another process's state
                    await asyncio.sleep(0.02)
            listening.cancel()
            await asyncio.gather(listening, return_exceptions=True)
            await y_socket.close()
        epoch_o, epoch_n = int(holder.split(":")[1]), int(taken.split(":")[1])
        assert epoch_n > epoch_o
        async with engine.connect() as connection:
            automatic = (
                await connection.execute(
                    text(
                        "SELECT a.hand_id, a.number, a.seq, a.lease_epoch FROM hand_actions a "
                        "JOIN hands h ON h.id = a.hand_id WHERE h.table_id = :t ORDER BY a.seq"
                    ),
                    {"t": table["id"]},
                )
            ).all()
        later = [r for r in automatic if r.seq > stopped.seq]
        assert later, "N played on"
        assert {r.lease_epoch for r in later} == {epoch_n}, "every time-out since the pause is N's"
        by_hand: dict[Any, list[int]] = {}
        for r in automatic:
            by_hand.setdefault(r.hand_id, []).append(r.number)
        assert all(numbers == list(range(1, len(numbers) + 1)) for numbers in by_hand.values())
        # What x's socket got: every seq once, in order, no gap (nothing O wrote on waking slipped in), and
        # each time bank spent on the turn it belongs to.
        snapshot_at = next(i for i, m in enumerate(received) if m["type"] == "snapshot")
        seqs = [m["seq"] for m in received[snapshot_at + 1 :] if isinstance(m.get("seq"), int)]
        distinct = sorted(set(seqs))
        assert seqs == sorted(seqs), "in seq order"
        assert distinct == list(range(distinct[0], distinct[-1] + 1)), "no seq missing"
        turn: dict[str, Any] | None = None
        live = received[snapshot_at + 1 :]
        first_turn = next(i for i, m in enumerate(live) if m["type"] == "turn")
        for m in live[first_turn:]:
            if m["type"] == "turn":
                turn = m
            elif m["type"] == "action-broadcast":
                turn = None
            elif m["type"] == "time-bank":
                assert turn is not None, ("a time bank off any turn", m)
                assert turn["seat"] == m["seat"], ("a time bank off its turn", m, turn)
    finally:
        await engine.dispose()
