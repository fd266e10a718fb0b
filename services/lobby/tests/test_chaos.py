"""Issue 12's chaos test: chips are conserved across the wallet and every table while play is disturbed.

Real processes throughout: the wallet and two lobby instances (one database, one Redis namespace) on a
private RabbitMQ node (``private_rabbit``: the shared broker is never touched), the topology declared on
it as a deployment would. Three cash tables of three players each play hands, bots over real WebSockets
to random instances, while every player drops its socket at random and comes back: mostly within the
grace period, sometimes after it (sat out, then back), sometimes after the sit-out timeout too (the seat
cashed out by the server, then bought again); now and then a player leaves (cashed out after the hand)
and sits down again. In turn, counted in hands, not seconds:

1. the instance holding the first table's lease is SIGKILLed while a hand is in play there; the other
   takes its tables over once the lease expires, a third instance is started, and play goes on;
2. the private RabbitMQ node is shut down (play goes on, events wait in the outbox) and started again.

Then every player but one per table leaves, and once the tables settled (no hand running, no money step
pending, every outbox drained) the test checks, from the wallet's ledger (its database) and the lobby's:
per asset the ledger sums to zero with nothing pending; players' balances + table escrows + house rake =
what was deposited; each table's escrow = the stacks seated there; each player's balance = deposit - the
buy-ins and top-ups the lobby recorded + its cash-outs (a cash-out or buy-in applied twice, or lost,
breaks this or the escrow check); each hand conserved its chips (stacks before = stacks after + rake,
rake settled to the house once); each hand's actions are numbered 1..n with the table's seq rising (none
lost or applied twice); and every hand has one ``lobby.hand_completed``, every one of which reached the
player service's queue across the broker's restart.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import random
import signal
import time
import uuid
from collections import defaultdict
from typing import Any

import pytest
from chaos_support import Http, Lobbies, Player, chaos_lobby_env, hands_done, queued_ids, rows, scalar, wait_for
from lobby_support import ADMIN, Ledger
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import create_async_engine
from tablium_lobby.settings import LobbySettings

from tablium_kit.messaging.topology import QueueNames, declare_topology
from tablium_kit.private_infra import PrivateRabbit
from tablium_kit.service_processes import free_port, wallet_env

pytestmark = pytest.mark.slow

TABLES, PLAYERS_PER_TABLE, FUNDS = 3, 3, 5_000
HANDS_PER_STEP = 2
EXCHANGE = "tablium.events"


async def test_chips_are_conserved_through_disconnects_a_killed_lobby_and_a_broker_restart(
    private_rabbit: PrivateRabbit, make_database: Any, run_id: str, jwks_url: str
) -> None:
    started = time.monotonic()
    timings: dict[str, float] = {}

    def mark(step: str) -> None:
        timings[step] = round(time.monotonic() - started, 1)

    seed = int(os.environ.get("TABLIUM_CHAOS_SEED") or random.randrange(2**32))
    rng = random.Random(seed)
    await declare_topology(private_rabbit.url, EXCHANGE)
    wallet_db, lobby_db = await make_database("chaos_wallet"), await make_database("chaos_lobby")
    wallet_port = free_port()
    wallet_url = f"http://127.0.0.1:{wallet_port}"
    namespace = f"test-{run_id}-chaos-{uuid.uuid4().hex[:6]}"
    lobbies = Lobbies(chaos_lobby_env(lobby_db, private_rabbit.url, EXCHANGE, wallet_url, run_id, namespace, jwks_url))
    ledger = Ledger(wallet_url)
    http = Http(lobbies, random.Random(rng.random()))
    lobby, ledger_db = create_async_engine(lobby_db), create_async_engine(wallet_db)
    redis = Redis.from_url(LobbySettings.from_env("lobby", {}).redis_url, decode_responses=True)
    stopping, finished = asyncio.Event(), asyncio.Event()
    tasks: list[asyncio.Task[None]] = []
    replacement: asyncio.Future[Any] | None = None
    try:
        # All three at once (the lobbies' migrations take turns under the kit's advisory lock).
        wallet_settings = wallet_env(wallet_db, EXCHANGE, amqp_url=private_rabbit.url)
        starts = await asyncio.gather(
            asyncio.to_thread(lobbies.start_wallet, wallet_settings, wallet_port),
            asyncio.to_thread(lobbies.start, "a"),
            asyncio.to_thread(lobbies.start, "b"),
            return_exceptions=True,
        )
        for outcome in starts:
            if isinstance(outcome, BaseException):
                raise outcome
        mark("processes")
        table_ids: list[str] = []
        players: list[Player] = []
        for t in range(TABLES):
            body = {"name": f"chaos {t}", "small_blind": "1", "big_blind": "2", "seats": 4}
            body |= {"action_clock_s": 1, "time_bank_s": 0, "rake_bps": 500}
            made = await http.call("POST", "/api/v1/tables", json=body, headers=ADMIN)
            assert made.status_code == 201, made.text
            table_ids.append(made.json()["id"])
            for seat in range(PLAYERS_PER_TABLE):
                player = Player(str(uuid.uuid4()), table_ids[-1], seat, random.Random(rng.random()), stays=seat == 0)
                await ledger.fund(player.id, FUNDS)
                players.append(player)
        deposited = FUNDS * len(players)
        tasks = [asyncio.create_task(p.run(http, lobbies, stopping)) for p in players]

        async def played(base: dict[str, int], more: int) -> bool | str:
            for task in tasks:
                if task.done() and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
            done = await hands_done(lobby, table_ids)
            return all(done[t] >= base[t] + more for t in table_ids) or f"hands done {done}, from {base}"

        async def play_on(more: int = HANDS_PER_STEP) -> None:
            base = await hands_done(lobby, table_ids)
            await wait_for(lambda: played(base, more), f"play did not go on (seed {seed})")

        await play_on()
        mark("first hands")

        # 1. SIGKILL the first table's lease holder while a hand is in play there.
        victim_table = table_ids[0]
        lease_key = f"{namespace}:lobby:lobby:lease:{victim_table}"
        in_play: list[Any] = []

        async def hand_in_play() -> bool | str:
            found = await rows(
                lobby,
                "SELECT h.id, h.actions, t.lease_epoch, now() AS at FROM cash_tables t "
                "JOIN hands h ON h.id = t.current_hand_id WHERE t.id = :t AND h.status = 'running'",
                t=victim_table,
            )
            holder = await redis.get(lease_key)
            if found and found[0].actions >= 1 and holder:
                in_play[:] = [found[0], holder]
                return True
            return "no hand in play"

        # The holder is frozen (SIGSTOP) before its hand is checked again: a hand it finished between the read
        # and the signal would make this a kill between hands (seen in a fresh-clone run), so then it goes on
        # and the next hand is tried.
        for _ in range(20):
            await wait_for(hand_in_play, "no hand to kill the holder in")
            hand_at_kill, holder = in_play
            victim = holder.split(":")[0]
            lobbies.alive[victim].signal(signal.SIGSTOP)
            dying = (await rows(lobby, "SELECT status FROM hands WHERE id = :h", h=hand_at_kill.id))[0]
            if dying.status == "running":
                break
            lobbies.alive[victim].signal(signal.SIGCONT)
        else:
            pytest.fail("the holder always finished its hand before it could be frozen")
        lobbies.kill(victim)
        # A replacement starts while the survivor takes the table over and play goes on.
        replacement = asyncio.ensure_future(asyncio.to_thread(lobbies.start, "c"))

        async def taken_over() -> bool | str:
            # Another instance holds the lease under a new epoch (not just its claim), and the hand ended.
            now = await redis.get(lease_key) or ""
            epoch = await scalar(lobby, "SELECT lease_epoch FROM cash_tables WHERE id = :t", t=victim_table)
            status = await scalar(lobby, "SELECT status FROM hands WHERE id = :h", h=hand_at_kill.id)
            holder, _, held_epoch = now.partition(":")
            done = holder not in ("", victim) and held_epoch == str(epoch) and epoch > hand_at_kill.lease_epoch
            return (done and status != "running") or f"lease {now!r}, epoch {epoch}, hand {status}"

        await wait_for(taken_over, "nobody took the killed holder's table over")
        await play_on()
        mark("taken over")
        await replacement
        mark("replacement started")

        # 2. The broker goes away and comes back while hands go on.
        await asyncio.to_thread(private_rabbit.stop)
        mark("broker stopped")
        await play_on()
        waiting = await scalar(lobby, "SELECT count(*) FROM outbox WHERE published_at IS NULL")
        assert waiting > 0, "events waited in the outbox while the broker was away"
        await asyncio.to_thread(private_rabbit.start)
        mark("broker started")
        await play_on()
        mark("played on")

        # Everyone but one player per table leaves; the stayers keep a socket (so are never sat out).
        stopping.set()
        await asyncio.gather(*tasks)
        stayers = [p for p in players if p.stays]
        leavers = [p for p in players if not p.stays]
        tasks = [asyncio.create_task(s.keep_socket(lobbies, finished)) for s in stayers]

        async def all_left() -> bool | str:
            seated = [p for p in leavers if await p.my_seat(http) is not None]
            for p in seated:
                await p.leave(http)
            return not seated or f"{len(seated)} still seated"

        await wait_for(all_left, "the leavers were not cashed out")
        mark("left")

        async def stayers_have_chips() -> bool | str:
            # A stayer cashed out by a timeout sits down again; one gone broke tops up (alone: no hand).
            short = []
            for stayer in stayers:
                seat = await stayer.my_seat(http)
                if seat is None:
                    await stayer.ensure_seated(http)
                    short.append(stayer.id)
                elif seat["status"] != "seated" or seat["stack"] == "0":
                    path = f"/api/v1/tables/{stayer.table_id}/seats/me/top-up"
                    await http.call("POST", path, stayer.id, json={"amount": "100"})
                    short.append(stayer.id)
            return not short or f"stayers {short} without chips"

        await wait_for(stayers_have_chips, "a stayer could not be seated with chips")

        async def settled() -> bool | str:
            state = {
                "hands": await scalar(lobby, "SELECT count(*) FROM hands WHERE status <> 'settled'"),
                "moves": await scalar(lobby, "SELECT count(*) FROM chip_movements WHERE status = 'pending'"),
                "seats": await scalar(lobby, "SELECT count(*) FROM seats WHERE status IN ('buying_in', 'leaving')"),
                "holds": await scalar(ledger_db, "SELECT count(*) FROM pending_transfers"),
                "lobby outbox": await scalar(lobby, "SELECT count(*) FROM outbox WHERE published_at IS NULL"),
                "wallet outbox": await scalar(ledger_db, "SELECT count(*) FROM outbox WHERE published_at IS NULL"),
            }
            return not any(state.values()) or json.dumps(state)

        await wait_for(settled, "the tables did not settle")
        mark("settled")
        finished.set()
        await asyncio.gather(*tasks)

        # The ledger: balanced, nothing pending; players + escrows + rake = what was deposited.
        accounts = await rows(
            ledger_db,
            "SELECT kind, owner, credits_posted - debits_posted AS balance, credits_pending + debits_pending AS "
            "pending FROM accounts WHERE asset = 'USDT'",
        )
        assert sum(int(a.balance) for a in accounts) == 0, "double entry"
        assert all(int(a.pending) == 0 for a in accounts)
        by_kind: dict[str, dict[str, int]] = defaultdict(dict)
        for a in accounts:
            by_kind[a.kind][a.owner] = int(a.balance)
        assert set(by_kind) <= {"player", "table_escrow", "house_rake", "house_adjustments"}, set(by_kind)
        balances = {owner.removeprefix("player:"): v for owner, v in by_kind["player"].items()}
        escrows = {owner.removeprefix("table:"): v for owner, v in by_kind["table_escrow"].items()}
        rake = sum(by_kind["house_rake"].values())
        assert -sum(by_kind["house_adjustments"].values()) == deposited
        assert sum(balances.values()) + sum(escrows.values()) + rake == deposited, (balances, escrows, rake)

        # Each table's escrow holds exactly the stacks seated there.
        stacks = dict.fromkeys(table_ids, 0)
        for table_id, stack in await rows(
            lobby, "SELECT table_id::text, sum(stack) FROM seats WHERE status = 'seated' GROUP BY 1"
        ):
            stacks[table_id] = int(stack)
        assert escrows == stacks, "escrow = seated stacks"
        assert sum(stacks.values()) > 0, "the stayers' chips are still on the tables"

        # Each player's balance is what the lobby's records of money in and out say.
        moved: dict[str, int] = defaultdict(int)
        for player_id, kind, amount in await rows(
            lobby, "SELECT player_id::text, kind, amount FROM chip_movements WHERE status = 'done'"
        ):
            moved[player_id] += int(amount) if kind == "cash_out" else -int(amount)
        assert balances == {p.id: FUNDS + moved[p.id] for p in players}, "balance = deposit - buy-ins + cash-outs"

        # Each hand conserved its chips, and its rake reached the house once.
        hands = await rows(lobby, "SELECT id::text, table_id::text, rake, result, actions FROM hands")
        for hand in hands:
            result = hand.result if isinstance(hand.result, dict) else json.loads(hand.result)
            results = result["players"]
            before = sum(int(r["stack_before"]) for r in results)
            after = sum(int(r["stack_after"]) + int(r["rake"]) for r in results)
            assert before == after, hand.id
            assert sum(int(r["rake"]) for r in results) == int(hand.rake)
        assert rake == sum(int(h.rake) for h in hands) > 0

        # Every action once, in order: numbered 1..n per hand, the table's seq rising through them.
        actions: dict[str, list[tuple[int, int]]] = defaultdict(list)
        for hand_id, number, seq in await rows(
            lobby,
            "SELECT a.hand_id::text, a.number, a.seq FROM hand_actions a JOIN hands h ON h.id = a.hand_id "
            "ORDER BY h.table_id, h.hand_no, a.number",
        ):
            actions[hand_id].append((number, seq))
        for hand in hands:
            numbers = [n for n, _ in actions[hand.id]]
            assert numbers == list(range(1, hand.actions + 1)), f"hand {hand.id}: actions {numbers}"
        by_table = await rows(
            lobby,
            "SELECT h.table_id::text, array_agg(a.seq ORDER BY h.hand_no, a.number) FROM hand_actions a "
            "JOIN hands h ON h.id = a.hand_id GROUP BY 1",
        )
        for table_id, seqs in by_table:
            assert all(x < y for x, y in itertools.pairwise(seqs)), f"table {table_id}: seqs {seqs}"

        # One hand_completed per hand, every one of them delivered across the broker's restart.
        completed = await rows(
            lobby, "SELECT id::text, envelope->'data'->>'hand_id' FROM outbox WHERE type = 'lobby.hand_completed'"
        )
        assert sorted(h for _, h in completed) == sorted(h.id for h in hands), "one event per hand"
        queued = await queued_ids(private_rabbit.url, QueueNames.for_service("player").main)
        assert {e for e, _ in completed} <= set(queued), "no hand_completed lost"

        # The chaos happened.
        assert sum(p.disconnects for p in players) > len(players)
        assert sum(p.sat_down for p in players) > len(players), "players sat down again"
        print(  # noqa: T201 - what the run did, for the record (pytest -s)
            f"chaos seed {seed}: {len(hands)} hands, {sum(len(a) for a in actions.values())} actions, "
            f"{sum(p.disconnects for p in players)} disconnects, {sum(p.sat_down for p in players)} buy-ins, "
            f"{sum(p.left for p in players)} leaves, rake {rake}, killed {victim} in hand {hand_at_kill.id}, "
            f"{waiting} events waited for the broker, {len(queued)} hand_completed delivered; timings {timings}"
        )
    finally:
        stopping.set()
        finished.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, *([replacement] if replacement else []), return_exceptions=True)
        await http.aclose()
        await ledger.aclose()
        await redis.aclose()
        await lobby.dispose()
        await ledger_db.dispose()
        await asyncio.to_thread(lobbies.stop_all)
