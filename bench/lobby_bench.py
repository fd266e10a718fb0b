"""Lobby benchmark: N cash tables of six bots playing over WebSockets against a real lobby process, and the
same turn-taking against a bare Litestar WebSocket broadcast (the baseline), in the same run.

    .venv/bin/python bench/lobby_bench.py [--tables 50,100,250,500] [--seconds 20] [--think 1.0]
                                          [--bot-processes 4] [--server granian|uvicorn] [--workers N]
                                          [--group-commits]
                                          [--setup bulk|api] [--profile DIR]

For each N: a real wallet process and a real lobby process (own databases, the run's own RabbitMQ
exchange and Redis namespace), N tables opened through the admin API, 6N players seated (``--setup api``:
each funded in the wallet and seated through the API, buy-ins real wallet holds; ``bulk``, the default:
five a table written into the database with their chips moved into the escrow by one transfer, the sixth
through the API: bench/lobby_bench_setup.py), then 6N sockets driven by a few bot
processes (bench/lobby_bench_clients.py, the lobby's own bot client; a table's six players in one
process) each acting after ``--think`` seconds on its turn. Over the measured window:

- latency: an action's send by the acting client → its ``action-broadcast`` received by the table's five
  other clients (one clock: the six live in one process), p50/p99/max;
- actions/s committed (``hand_actions`` rows in the window), messages/s delivered to clients;
- lost / duplicated actions: every client's ``seq`` must run without a gap after its snapshot, and the
  action seqs it received must be exactly the table's ``hand_actions`` rows in that range, once each;
- the lobby's CPU (all its processes) and its RSS growth per socket.

Then the baseline: the same sockets and think time against ``bench_apps:create_ws_broadcast_app`` (one
action → the lobby's two public messages, padded to the lobby's mean sizes measured just before),
served by the same server. ``--profile DIR`` records the lobby worker with py-spy during the window and
prints its top functions. Bounded: every phase has a time limit, the databases and exchange are dropped.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aio_pika
import httpx
from lobby_bench_report import print_profile, report
from lobby_bench_setup import serve_jwks, set_up_tables
from lobby_bench_stages import print_stage_table, stage_table
from sqlalchemy import text

from tablium_kit import db

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PG = "postgresql+asyncpg://postgres@127.0.0.1:5432"
AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
PAGE = os.sysconf("SC_PAGE_SIZE")
TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# -- processes ---------------------------------------------------------------------------------------


class Service:
    """A server in its own process group (granian's workers included), its log in the bench's log dir."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], logs: Path) -> None:
        self.name = name
        log = (logs / f"{name}.log").open("wb")  # structlog writes to stdout, the rest to stderr: both kept
        self.process = subprocess.Popen(
            argv, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip

    def wait_ready(self, url: str) -> None:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"bench: {self.name} exited with {self.process.returncode}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url, timeout=1).status_code < 500:
                    return
            time.sleep(0.2)
        raise SystemExit(f"bench: {self.name} not ready")

    def pids(self) -> list[int]:
        found = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                with contextlib.suppress(OSError):
                    fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
                    if int(fields[2]) == self.process.pid:  # the process group
                        found.append(int(entry))
        return found

    def cpu_s(self) -> float:
        total = 0
        for pid in self.pids():
            with contextlib.suppress(OSError):
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])
        return total / TICKS

    def runnable_s(self) -> float:
        """Seconds its processes spent runnable but waiting for a CPU (/proc/<pid>/schedstat): starvation."""
        total = 0
        for pid in self.pids():
            with contextlib.suppress(OSError):
                total += int(Path(f"/proc/{pid}/schedstat").read_text().split()[1])
        return total / 1e9

    def rss(self) -> int:
        total = 0
        for pid in self.pids():
            with contextlib.suppress(OSError):
                total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
        return total

    def worker(self) -> int:
        """The process serving the sockets: granian's worker (the group's largest), or the only one."""
        return max(self.pids(), key=lambda pid: int(Path(f"/proc/{pid}/statm").read_text().split()[1]))

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=15)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)


def server_argv(server: str, target: str, port: int, workers: int = 1) -> list[str]:
    if server == "uvicorn":
        return [str(BIN / "python"), "-m", "uvicorn", "--factory", target, "--host", "127.0.0.1",
                "--port", str(port), "--loop", "uvloop", "--no-access-log", "--log-level", "warning",
                "--workers", str(workers)]  # fmt: skip
    return [str(BIN / "granian"), "--interface", "asgi", "--loop", "uvloop", "--factory", "--workers", str(workers),
            "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", target]  # fmt: skip


def processes_cpu_s(pids: list[int]) -> float:
    """CPU seconds (user + system) used so far by these processes (the bots': is the bench the bottleneck?)."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / TICKS


def processes_runnable_s(pids: list[int]) -> float:
    """Seconds these processes were runnable but waiting for a CPU (the bots: are they starved?)."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            total += int(Path(f"/proc/{pid}/schedstat").read_text().split()[1])
    return total / 1e9


def machine_busy() -> tuple[int, int]:
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


# -- one measured run ---------------------------------------------------------------------------------


def run_bots(mode: str, ws: str, lobby: str, tables: list[dict[str, Any]], args: argparse.Namespace,
             work: Path, target: Service) -> dict[str, Any]:  # fmt: skip
    """Drive the sockets from ``--bot-processes`` processes; measure the window; merge their results."""
    shares = [tables[i :: args.bot_processes] for i in range(args.bot_processes)]
    bots = []
    for i, share in enumerate(s for s in shares if s):
        spec, out = work / f"{mode}-spec-{i}.json", work / f"{mode}-result-{i}.json"
        spec.write_text(json.dumps({"mode": mode, "ws": ws, "lobby": lobby, "think_s": args.think, "seed": i,
                                    "tables": share, "stages": args.stages}))  # fmt: skip
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / "lobby_bench_clients.py"), str(spec), str(out)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT,
        )  # fmt: skip
        bots.append((process, out))
    rss_before = target.rss()
    began = time.monotonic()
    for process, _ in bots:
        line = process.stdout.readline() if process.stdout else ""
        if line.strip() != "ready":
            raise SystemExit(f"bench: a bot process failed to connect ({process.wait()})")
    print(f"{mode}, {len(tables)} tables: {len(tables) * 6} sockets connected in {time.monotonic() - began:.0f} s; "
          "measuring", flush=True)  # fmt: skip
    start = time.time() + args.warmup
    end = start + args.seconds
    for process, _ in bots:
        assert process.stdin is not None
        process.stdin.write(f"measure {start} {end}\n")
        process.stdin.flush()
    time.sleep(max(0.0, start - time.time()))
    cpu0, busy0, wait0, load0 = target.cpu_s(), machine_busy(), target.runnable_s(), os.getloadavg()[0]
    bot_pids = [process.pid for process, _ in bots]
    bots_cpu0, bots_wait0 = processes_cpu_s(bot_pids), processes_runnable_s(bot_pids)
    profiler = None
    if args.profile and mode == "lobby":
        profile_path = Path(args.profile) / f"lobby-{len(tables)}.txt"
        profile_path.parent.mkdir(parents=True, exist_ok=True)
        profiler = subprocess.Popen(
            [str(BIN / "py-spy"), "record", "--pid", str(target.worker()), "--duration", str(int(args.seconds)),
             "--rate", "67", "--format", "raw", "--nonblocking", "--output", str(profile_path)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
    time.sleep(max(0.0, end - time.time()))
    cpu1, busy1, wait1, load1 = target.cpu_s(), machine_busy(), target.runnable_s(), os.getloadavg()[0]
    bots_cpu = (processes_cpu_s(bot_pids) - bots_cpu0) / args.seconds
    bots_wait = (processes_runnable_s(bot_pids) - bots_wait0) / args.seconds
    rss_after = target.rss()
    for process, _ in bots:
        process.wait(timeout=120)
    if profiler is not None:
        profiler.wait(timeout=60)
    merged: dict[str, Any] = collections.defaultdict(int)
    merged["samples"], merged["clients"], merged["sizes"] = [], [], collections.defaultdict(list)
    merged["gap_details"], merged["sends"], merged["receipts"], merged["bot_lags"] = [], [], [], []
    for _, out in bots:
        result = json.loads(out.read_text())
        for key, value in result.items():
            if key == "error_kinds":
                merged.setdefault("error_kinds", collections.Counter()).update(value)
            elif key in ("samples", "clients", "gap_details", "sends", "receipts", "bot_lags"):
                merged[key].extend(value)
            elif key == "sizes":
                for kind, sizes in value.items():
                    merged["sizes"][kind].extend(sizes)
            else:
                merged[key] += value
    sockets = sum(len(t["players"]) for t in tables)
    merged.update(
        tables=len(tables), sockets=sockets, window=(start, end), cpu=(cpu1 - cpu0) / args.seconds,
        starved=(wait1 - wait0) / args.seconds, load=(load0, load1), bots_cpu=bots_cpu, bots_wait=bots_wait,
        rss=rss_after, rss_per_socket=(rss_after - rss_before) / sockets,
        busy=(busy1[0] - busy0[0]) / max(1, busy1[1] - busy0[1]),
    )  # fmt: skip
    return merged


async def check_actions(database_url: str, result: dict[str, Any]) -> None:
    """Every client's action seqs against the table's hand_actions rows: lost, duplicated, phantom."""
    engine = db.create_engine(database_url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(text(
                "SELECT h.table_id::text, a.seq, a.automatic, a.created_at FROM hand_actions a "
                "JOIN hands h ON h.id = a.hand_id"))  # fmt: skip
            by_table: dict[str, set[int]] = collections.defaultdict(set)
            start, end = result["window"]
            in_window = automatic = 0
            for table_id, seq, auto, created in rows:
                by_table[table_id].add(seq)
                if start <= created.timestamp() < end:
                    in_window += 1
                    automatic += auto is not None
    finally:
        await engine.dispose()
    lost = duplicated = phantom = unsynced = 0
    for client in result["clients"]:
        if client["from"] is None:
            unsynced += 1
            continue
        low, high = client["from"], client["to"]
        expected = {s for s in by_table[client["table"]] if low < s <= high}
        seen = [s for s in client["actions"] if low < s <= high]
        lost += len(expected - set(seen))
        duplicated += len(seen) - len(set(seen))
        phantom += len(set(seen) - expected)
    result.update(committed=in_window, timeouts=automatic, lost=lost, duplicated=duplicated, phantom=phantom,
                  unsynced=unsynced)  # fmt: skip


def lobby_env(base: dict[str, str], run: str, database_url: str, wallet: str, jwks: str, exchange: str,
              args: argparse.Namespace) -> dict[str, str]:  # fmt: skip
    return {
        **base,
        "TABLIUM_LOBBY_DATABASE_URL": database_url,
        "TABLIUM_LOBBY_WALLET_URL": wallet,
        "TABLIUM_LOBBY_JWKS_URL": jwks,
        "TABLIUM_LOBBY_REDIS_NAMESPACE": f"bench-{run}",
        "TABLIUM_EVENTS_EXCHANGE": exchange,
        "TABLIUM_LOBBY_BETWEEN_HANDS_S": str(args.between_hands),
        # Bots send nothing but actions: no idle close, no sit-out for a socket still connecting.
        "TABLIUM_LOBBY_WS_IDLE_TIMEOUT_S": "3600",
        "TABLIUM_LOBBY_DISCONNECT_GRACE_S": "600",
        # The shared broker's lobby queue belongs to the running platform.
        "TABLIUM_LOBBY_CONSUME_EVENTS": "false",
        "TABLIUM_LOBBY_GROUP_COMMITS": "true" if args.group_commits else "false",
        "TABLIUM_LOBBY_WORKERS": str(args.workers),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tables", default="50,100,250,500", help="comma-separated table counts (the curve)")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured window per run")
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--think", type=float, default=1.0, help="a bot's think time before each action")
    parser.add_argument("--between-hands", type=float, default=1.0)
    parser.add_argument("--bot-processes", type=int, default=4)
    parser.add_argument("--server", choices=("granian", "uvicorn"), default="granian")
    parser.add_argument(
        "--workers", type=int, default=1, help="lobby worker processes (TABLIUM_LOBBY_WORKERS; the bare app keeps 1)"
    )
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--group-commits", action="store_true", help="the lobby with TABLIUM_LOBBY_GROUP_COMMITS")
    parser.add_argument(
        "--setup",
        choices=("bulk", "api"),
        default="bulk",
        help="seat five players a table straight into the database (bulk) or all through the API",
    )
    parser.add_argument("--profile", default=None, help="directory for py-spy profiles of the lobby worker")
    parser.add_argument(
        "--stages", action="store_true", help="trace each action's stages in the lobby and print where the time goes"
    )
    args = parser.parse_args()
    counts = [int(n) for n in args.tables.split(",")]

    run = uuid.uuid4().hex[:8]
    work = Path(tempfile.mkdtemp(prefix="tablium-lobby-bench-"))
    exchange = f"tablium.events.bench-{run}"
    # The caller's PYTHONPATH is kept after bench/ (another checkout's packages first: a "before" run).
    python_path = os.pathsep.join(filter(None, [str(ROOT / "bench"), os.environ.get("PYTHONPATH")]))
    base = {**os.environ, "TABLIUM_ENVIRONMENT": "test", "TABLIUM_LOG_LEVEL": "WARNING",
            "PYTHONPATH": python_path}  # fmt: skip
    jwks = serve_jwks()
    asyncio.run(declare_sink(exchange))
    wallet_db = f"{PG}/bench_{run}_wallet"
    databases = [wallet_db]
    asyncio.run(db.ensure_database(wallet_db))
    wallet_port = free_port()
    wallet_env = {**base, "TABLIUM_WALLET_DATABASE_URL": wallet_db, "TABLIUM_WALLET_PORT": str(wallet_port),
                  "TABLIUM_EVENTS_EXCHANGE": exchange, "TABLIUM_WALLET_CONSUME_EVENTS": "false"}  # fmt: skip
    wallet = Service("wallet", [str(BIN / "tablium-wallet"), "serve", "--port", str(wallet_port)], wallet_env, work)
    rows: list[tuple[str, dict[str, Any]]] = []
    stage_rows: list[tuple[str, dict[str, Any]]] = []
    try:
        wallet_url = f"http://127.0.0.1:{wallet_port}"
        wallet.wait_ready(f"{wallet_url}/health")
        for n in counts:
            lobby_db = f"{PG}/bench_{run}_lobby_{n}"
            databases.append(lobby_db)
            asyncio.run(db.ensure_database(lobby_db))
            port = free_port()
            env = lobby_env(base, run, lobby_db, wallet_url, jwks, exchange, args)
            trace = work / f"lobby-{n}-stages.jsonl"
            if args.stages:
                env["TABLIUM_LOBBY_STAGE_TRACE"] = str(trace)
            argv = server_argv(args.server, "tablium_lobby.app:create_app", port, args.workers)
            lobby = Service(f"lobby-{n}", argv, env, work)
            try:
                url = f"http://127.0.0.1:{port}"
                lobby.wait_ready(f"{url}/health")
                began = time.monotonic()
                tables = asyncio.run(set_up_tables(url, wallet_url, n, lobby_db, bulk=args.setup == "bulk"))
                print(f"lobby, {n} tables: set up in {time.monotonic() - began:.0f} s; connecting", flush=True)
                result = run_bots("lobby", url.replace("http", "ws"), url, tables, args, work, lobby)
                asyncio.run(check_actions(lobby_db, result))
            finally:
                lobby.stop()
            if args.stages and trace.exists():
                seats = {(t["id"], p["id"]): p["seat"] for t in tables for p in t["players"]}
                stage_rows.append((f"lobby, {n} tables", stage_table(trace, result, seats)))
            workers = f", {args.workers} workers" if args.workers > 1 else ""
            rows.append((f"lobby ({args.server}{workers}{', grouped' if args.group_commits else ''})", result))
            if args.no_baseline:
                continue
            sizes = result["sizes"]
            bare_env = {**base, "BENCH_ACTION_BYTES": str(int(statistics.mean(sizes.get("action-broadcast", [150])))),
                        "BENCH_TURN_BYTES": str(int(statistics.mean(sizes.get("turn", [260]))))}  # fmt: skip
            port = free_port()
            bare = Service(f"bare-{n}", server_argv(args.server, "bench_apps:create_ws_broadcast_app", port),
                           bare_env, work)  # fmt: skip
            try:
                bare.wait_ready(f"http://127.0.0.1:{port}/bare")
                bare_tables = [{"id": t["id"], "players": [{"seat": p["seat"]} for p in t["players"]]} for t in tables]
                baseline = run_bots("bare", f"ws://127.0.0.1:{port}", "", bare_tables, args, work, bare)
                baseline.update(committed=baseline["actions_sent"], timeouts=0, lost=0, duplicated=0, phantom=0,
                                unsynced=0)  # fmt: skip
            finally:
                bare.stop()
            rows.append((f"bare Litestar broadcast ({args.server})", baseline))
    finally:
        wallet.stop()
        for url in databases:
            with contextlib.suppress(Exception):
                asyncio.run(db.drop_database(url))
        asyncio.run(delete_exchange(exchange))
    report(rows, args)
    for name, result in rows:
        for gap in result.get("gap_details", [])[:10]:  # where a client saw a seq jump (first few per run)
            print(f"gap, {name}: table {gap['table']} seat {gap['seat']}: after {gap['after']} got {gap['got']} "
                  f"({gap['type']}) at {time.strftime('%H:%M:%S', time.gmtime(gap['at']))}")  # fmt: skip
    for name, stages in stage_rows:
        print_stage_table(name, stages)
    if args.profile:
        for n in counts:
            path = Path(args.profile) / f"lobby-{n}.txt"
            if path.exists():
                print(f"\npy-spy, lobby worker at {n} tables: top functions by own time (% of samples)")
                print_profile(path)
    print(f"\n(logs: {work})")


async def declare_sink(name: str) -> None:
    """The run's exchange with one queue bound to everything that keeps nothing: the services publish
    ``mandatory`` (an unroutable event is retried), and the bench has no consumers."""
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        exchange = await channel.declare_exchange(name, aio_pika.ExchangeType.TOPIC, durable=True)
        queue = await channel.declare_queue(f"{name}.sink", arguments={"x-max-length": 0})
        await queue.bind(exchange, "#")


async def delete_exchange(name: str) -> None:
    with contextlib.suppress(Exception):
        connection = await aio_pika.connect(AMQP_URL)
        async with connection:
            channel = await connection.channel()
            await channel.queue_delete(f"{name}.sink")
            await channel.exchange_delete(name)


if __name__ == "__main__":
    main()
