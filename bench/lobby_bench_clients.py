"""One bot process of the lobby benchmark: many sockets, a few tables' six players each (started by
bench/lobby_bench.py, not by hand).

    python bench/lobby_bench_clients.py SPEC.json RESULT.json

SPEC: ``{"mode": "lobby" | "bare", "ws": "ws://host:port", "lobby": "http://host:port", "think_s": 1.0,
"tables": [{"id": ..., "players": [{"id": ..., "token": ..., "seat": n}]}]}``. The process connects every
socket, prints ``ready``, and plays; a line ``measure T0 T1`` on stdin (wall-clock seconds) sets the window
whose actions are measured. At T1 the bots stop acting, wait for what is in flight, close and write RESULT.

A table's six players live in one process, so an action's send time and the other five clients' receipt
times are read from one clock. ``lobby`` mode plays with the lobby's own bot client
(``tablium_lobby.bots``); ``bare`` mode plays the same turn-taking against bench_apps' bare Litestar
broadcast app (the baseline).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import random
import resource
import sys
import time
from typing import Any

import httpx
import msgspec
import uvloop
import websockets
from tablium_lobby.bots import POLICIES
from tablium_lobby.bots.cli import RebuyingBot
from tablium_lobby.bots.credentials import Credentials

from tablium_kit.collector import tune_gc

# The actions a player (or the clock) takes: one hand_actions row each, one action-broadcast each.
PLAYER_ACTIONS = frozenset({"fold", "check", "call", "bet", "raise"})
CONNECTS_IN_FLIGHT = 16
_decode = msgspec.json.decode


class Window:
    def __init__(self) -> None:
        self.start = float("inf")
        self.end = float("inf")
        self.stopping = False
        self.stages = False  # record sends and receipts for the stage table (bench/lobby_bench_stages.py)

    def inside(self, t: float) -> bool:
        return self.start <= t < self.end


class TableLog:
    """What the six clients of one table saw: latency samples and the actions each client received."""

    def __init__(self, table_id: str, window: Window, samples: list[float]) -> None:
        self.table_id = table_id
        self.window = window
        self.samples = samples
        self.pending: dict[int, tuple[int, float]] = {}  # seat -> (seq the action answered, send time)
        self.sent_at: dict[int, float] = {}  # the action's resulting seq -> its send time
        self.actions_sent = 0
        # With --stages: each timed action's (table, seq, send time) and each receipt's (table, seq, seat, time).
        self.sends: list[tuple[str, int, float]] = []
        self.timed: set[int] = set()
        self.receipts: list[tuple[str, int, int, float]] = []

    def sent(self, seat: int, seq: int) -> None:
        now = time.time()
        self.pending[seat] = (seq, now)
        if self.window.inside(now):
            self.actions_sent += 1


class ClientLog:
    """One socket's view: seq continuity after its snapshot, the action seqs it received, message sizes."""

    def __init__(self, table: TableLog, seat: int) -> None:
        self.table = table
        self.seat = seat
        self.snapshot_seq: int | None = None
        self.last = -1
        self.gaps = 0
        self.gap_details: list[dict[str, Any]] = []
        self.backwards = 0
        self.actions: list[int] = []
        self.received = 0
        self.received_bytes = 0
        self.sizes: dict[str, list[int]] = {}
        self.closed_early = False

    def received_message(self, message: dict[str, Any], size: int) -> None:
        now = time.time()
        kind = message.get("type", "")
        if self.table.window.inside(now):
            self.received += 1
            self.received_bytes += size
            sizes = self.sizes.setdefault(kind, [])
            if len(sizes) < 200:
                sizes.append(size)
        seq = message.get("seq")
        if not isinstance(seq, int):
            return
        if kind == "snapshot" and self.snapshot_seq is None:
            self.snapshot_seq = seq
            self.last = max(self.last, seq)
        elif self.snapshot_seq is not None:
            if seq > self.last + 1:
                self.gaps += 1
                if len(self.gap_details) < 5:  # where and when: kept in the result file for diagnosis
                    self.gap_details.append({"after": self.last, "got": seq, "type": kind, "at": now})
            elif seq < self.last:
                self.backwards += 1
            self.last = max(self.last, seq)
        else:
            self.last = max(self.last, seq)
        if kind == "action-broadcast" and message.get("action") in PLAYER_ACTIONS:
            self.actions.append(seq)
            seat = message.get("seat")
            sent_at = self.table.sent_at.get(seq)
            if sent_at is None and isinstance(seat, int):
                pending = self.table.pending.get(seat)
                if pending is not None and pending[0] < seq:
                    sent_at = self.table.sent_at[seq] = pending[1]
                    del self.table.pending[seat]
            if sent_at is not None and seat != self.seat and self.table.window.inside(sent_at):
                self.table.samples.append((now - sent_at) * 1000)
                if self.table.window.stages:
                    if seq not in self.table.timed:
                        self.table.timed.add(seq)
                        self.table.sends.append((self.table.table_id, seq, sent_at))
                    self.table.receipts.append((self.table.table_id, seq, self.seat, now))


class LobbyBot(RebuyingBot):
    """The lobby's bot client, timing its sends and every message it receives."""

    def __init__(self, *args: Any, log: ClientLog, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.log = log
        # The base client keeps every message (for tests); over a run that is millions of dicts, and each
        # full collection of the bot process walked them all: its loop stalled up to ~0.9 s (ADR 0012, sixth
        # pass), and the stall was counted as the lobby's latency. The last few are enough here.
        self.received = collections.deque(maxlen=8)  # type: ignore[assignment]

    async def connect(self) -> None:
        # The base client's, with a longer opening handshake: thousands of sockets open at once.
        self.socket = await websockets.connect(
            self.ws_url, additional_headers={"Authorization": f"Bearer {self.token}"}, max_size=2**20, open_timeout=60
        )

    async def send(self, message: dict[str, Any]) -> None:
        if message.get("type") == "action":
            if self.log.table.window.stopping:
                return
            self.log.table.sent(self.log.seat, int(message["seq"]))
        await super().send(message)

    async def play(self, hands: int, *, timeout_s: float = 60.0) -> None:
        # The base loop, with the raw size of each message (the baseline sends the same sizes). Decoded
        # with msgspec (the bots' CPU shares the machine with the lobby; every message is still checked).
        async for raw in self.socket:
            message = _decode(raw)
            self.log.received_message(message, len(raw))
            await self.on_message(message)


class BareClient:
    """The same turn-taking against the bare broadcast app: act (after thinking) when the turn is ours."""

    def __init__(self, url: str, log: ClientLog, think_s: float) -> None:
        self.url = url
        self.log = log
        self.think_s = think_s
        self.socket: Any = None
        self.seq = 0
        self.errors: list[Any] = []

    async def connect(self) -> None:
        self.socket = await websockets.connect(self.url, max_size=2**20, open_timeout=60)

    async def play(self, hands: int, *, timeout_s: float = 60.0) -> None:
        async for raw in self.socket:
            message = _decode(raw)
            if message.get("type") == "snapshot":
                self.log.seat = message["seat"]  # the bare app seats clients in the order they join
            self.log.received_message(message, len(raw))
            self.seq = max(self.seq, message.get("seq", 0))
            if message.get("type") == "turn" and message.get("seat") == self.log.seat:
                await asyncio.sleep(self.think_s)
                if self.log.table.window.stopping:
                    continue
                self.log.table.sent(self.log.seat, self.seq)
                await self.socket.send(json.dumps({"type": "action", "action": "check", "seq": self.seq}))

    async def close(self) -> None:
        if self.socket is not None:
            await self.socket.close()


async def main(spec_path: str, result_path: str) -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    with open(spec_path) as source:  # noqa: ASYNC230 - before any socket
        spec = json.load(source)
    window = Window()
    samples: list[float] = []
    rng = random.Random(spec.get("seed", 1))
    http = httpx.AsyncClient(timeout=30)
    tables: list[TableLog] = []
    clients: list[tuple[ClientLog, Any]] = []
    for table in spec["tables"]:
        table_log = TableLog(table["id"], window, samples)
        tables.append(table_log)
        for player in table["players"]:
            log = ClientLog(table_log, player["seat"])
            if spec["mode"] == "lobby":
                client: Any = LobbyBot(
                    f"{spec['ws']}/api/v1/tables/{table['id']}/ws",
                    player["token"],
                    player["id"],
                    POLICIES["random"],
                    rng=random.Random(rng.random()),
                    think_s=spec["think_s"],
                    http=http,
                    login=Credentials(http, spec["lobby"], player["token"]),
                    lobby=spec["lobby"],
                    table_id=table["id"],
                    log=log,
                )
            else:
                client = BareClient(f"{spec['ws']}/bare/{table['id']}/ws?size=6", log, spec["think_s"])
            clients.append((log, client))

    gate = asyncio.Semaphore(CONNECTS_IN_FLIGHT)

    async def connect(client: Any) -> None:
        async with gate:
            for attempt in range(5):
                try:
                    await client.connect()
                    return
                except (OSError, websockets.WebSocketException):
                    if attempt == 4:
                        raise
                    await asyncio.sleep(0.5 * (attempt + 1))

    await asyncio.gather(*(connect(client) for _, client in clients))
    # As the lobby does: what the connects made is frozen out of full collections, and young collections
    # are rarer (a bot process's own pauses are counted as latency).
    tune_gc(10_000)

    async def play(log: ClientLog, client: Any) -> None:
        with contextlib.suppress(websockets.WebSocketException, OSError):
            await client.play(10**9)
        if not window.stopping:
            log.closed_early = True

    players = [asyncio.create_task(play(log, client)) for log, client in clients]
    window.stages = bool(spec.get("stages"))
    lags: list[float] = []

    async def probe_lag() -> None:
        # This process's own loop lag in the window: how late a receipt can be read after it arrived.
        loop = asyncio.get_running_loop()
        while not window.stopping:
            before = loop.time()
            await asyncio.sleep(0.01)
            if window.inside(time.time()):
                lags.append((loop.time() - before - 0.01) * 1000)

    prober = asyncio.create_task(probe_lag())
    print("ready", flush=True)
    line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    _, start, end = line.split()
    window.start, window.end = float(start), float(end)
    await asyncio.sleep(max(0.0, window.end - time.time()))
    window.stopping = True
    await prober
    await asyncio.sleep(3.0)  # what was sent before the end arrives
    for task in players:
        task.cancel()
    await asyncio.gather(*players, return_exceptions=True)
    with contextlib.suppress(Exception):
        async with asyncio.timeout(20):
            await asyncio.gather(*(client.close() for _, client in clients), return_exceptions=True)
    await http.aclose()

    result = {
        "samples": samples,
        "actions_sent": sum(t.actions_sent for t in tables),
        "received": sum(log.received for log, _ in clients),
        "received_bytes": sum(log.received_bytes for log, _ in clients),
        "errors": sum(len(client.errors) for _, client in clients),
        "error_kinds": dict(
            collections.Counter(str(e.get("error", ""))[:60] for _, client in clients for e in client.errors)
        ),
        "closed_early": sum(log.closed_early for log, _ in clients),
        "gaps": sum(log.gaps for log, _ in clients),
        "backwards": sum(log.backwards for log, _ in clients),
        "gap_details": [
            {"table": log.table.table_id, "seat": log.seat, **gap} for log, _ in clients for gap in log.gap_details
        ],
        "sizes": {},
        "sends": [send for t in tables for send in t.sends],
        "receipts": [receipt for t in tables for receipt in t.receipts],
        "bot_lags": lags,
        "clients": [
            {"table": t.table.table_id, "seat": t.seat, "from": t.snapshot_seq, "to": t.last, "actions": t.actions}
            for t, _ in clients
        ],
    }
    sizes: dict[str, list[int]] = result["sizes"]  # type: ignore[assignment]
    for log, _ in clients:
        for kind, values in log.sizes.items():
            sizes.setdefault(kind, []).extend(values[:20])
    with open(result_path, "w") as out:  # noqa: ASYNC230 - at the end
        json.dump(result, out)


if __name__ == "__main__":
    uvloop.run(main(sys.argv[1], sys.argv[2]))  # the servers' loop too: the bots' I/O costs less CPU
