"""HTTP benchmark: what the service kit and the gateway cost, against bare Litestar and raw asyncpg.

Runs, each under granian (one worker, uvloop) and loaded by ``wrk -t2 -c64``:

1. bare Litestar ``GET /ping`` (the baseline of routes without a database), and bare Litestar with the
   player's ``/auth/session`` handler shape (a controller method returning a Struct);
2. the same handler inside the kit, with a verified RS256 token (``GET /ping``, Bearer);
3. the player's authenticated ``GET /api/v1/auth/session`` (answered from the token), directly and through
   the development gateway (route match, JWT plugin, rate limit off, proxy);
4. bare Litestar with a raw asyncpg pool reading a player by primary key (the baseline of database reads),
   and against it the hot authenticated reads: the player's ``GET /players/me`` (also through the gateway),
   the wallet's ``GET /wallet/balances``, the event service's ``GET /tournaments/{id}`` and the lobby's
   table list;
5. WebSockets: 64 sockets on the lobby's table WebSocket, each sending a heartbeat after random pauses (~512
   messages/s in all) and timing the lobby's heartbeat back, directly and through the gateway in each round
   (p50/p99 round trip, and the p99 the gateway adds).

Prints requests/s and p50/p99 latency per run (medians of interleaved rounds), each run's share of its
baseline in the same round, the load average, and which of issue 16's targets are met. The p99 a gateway row adds
is the median over paired paced runs (direct and via the gateway back to back, ``PAIRS`` a round), printed pair by
pair with the CPU pressure during each (see ``PAIRS``).
Usage: ``.venv/bin/python bench/http_bench.py [--seconds 5] [--rounds 3] [--only NAME] [--profile NAME]``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import uvloop
import websockets
from http_bench_platform import Platform, Seed
from http_bench_platform import seed as make_seed

CONNECTIONS = 64
THREADS = 2
PACED = Path(__file__).with_name("paced.lua")
# The p99 a gateway row adds is judged on pairs: its paced run and its direct run back to back (order alternating),
# PAIRS times a round. On the shared 2-core machine a p99 follows how long runnable tasks wait for a CPU, which
# other work changes from one second to the next (ADR 0004, "The tail of /players/me through the gateway"): a
# pair sees the same machine, and the median of several pairs is not decided by one unlucky run.
PAIRS = 3


def cpu_pressure_ms() -> float:
    """Time during which some runnable task waited for a CPU, since boot (ms; Linux PSI, 0 without it)."""
    try:
        some = Path("/proc/pressure/cpu").read_text().splitlines()[0]
    except (OSError, IndexError):
        return 0.0
    return int(some.rpartition("total=")[2]) / 1000


def wrk(
    url: str, token: str | None, seconds: int, *, rate: int = 0, warm_up: bool = True
) -> tuple[float, float, float, int]:
    """(requests/s, p50 ms, p99 ms, non-2xx answers) from wrk --latency.

    ``rate`` 0: as fast as the server answers (throughput; each connection sends its next request as soon as
    its answer arrives). Otherwise the connections together offer about ``rate`` requests a second with
    random pauses (bench/paced.lua): the latency a request has at that load.
    """
    headers = ["-H", f"Authorization: Bearer {token}"] if token else []
    base = ["wrk", f"-t{THREADS}", f"-c{CONNECTIONS}"]
    if warm_up:
        subprocess.run([*base, "-d1s", *headers, url], check=True, capture_output=True)
    paced = ["-s", str(PACED), url, "--", str(rate), str(CONNECTIONS)] if rate else [url]
    out = subprocess.run(
        [*base, f"-d{seconds}s", "--latency", *headers, *paced], check=True, capture_output=True, text=True
    ).stdout
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]

    def percentile(p: str) -> float:
        value, unit = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    return rps, percentile("50"), percentile("99"), int(non_2xx.group(1)) if non_2xx else 0


# The WebSocket rows: sockets on the lobby's table WebSocket (spread over the seeded tables), each sending a
# heartbeat after a random pause and timing the lobby's heartbeat back (the socket's echo). The lobby refuses a
# socket's messages past 20 a second; each offers WS_MESSAGES_PER_S on average.
WS_CLIENTS = 64
WS_MESSAGES_PER_S = 8
WS_DIRECT = "lobby table WebSocket, direct"
WS_GATEWAY = "lobby table WebSocket, via gateway"
_HEARTBEAT = '{"type":"heartbeat"}'


def ws_echo(url: str, token: str, table_ids: list[str], seconds: int) -> tuple[list[float], int]:
    """Round-trip times (ms) of heartbeat -> heartbeat over ``WS_CLIENTS`` table sockets during ``seconds``,
    and the number of failures (a socket that didn't open, an answer that didn't come within 5 s)."""
    return uvloop.run(_ws_echo(url, token, table_ids, seconds))


async def _ws_echo(url: str, token: str, table_ids: list[str], seconds: int) -> tuple[list[float], int]:
    samples: list[float] = []
    failures = 0
    opened = 0
    all_open, start = asyncio.Event(), asyncio.Event()
    mean_s = 1 / WS_MESSAGES_PER_S

    def settled() -> None:  # one more socket open, or given up on
        nonlocal opened
        opened += 1
        if opened == WS_CLIENTS:
            all_open.set()

    async def client(number: int) -> None:
        nonlocal failures
        table = table_ids[number % len(table_ids)]
        try:
            async with asyncio.timeout(30):
                socket = await websockets.connect(f"{url}/api/v1/tables/{table}/ws", compression=None,
                                                  additional_headers={"Authorization": f"Bearer {token}"})  # fmt: skip
                while '"snapshot"' not in await socket.recv():  # join-ack, then the table's snapshot
                    pass
        except (OSError, TimeoutError, websockets.WebSocketException):
            failures += 1
            settled()
            return
        settled()
        try:
            await start.wait()
            deadline = time.perf_counter() + seconds
            while True:
                await asyncio.sleep(random.uniform(0, 2 * mean_s))  # arrivals spread out, as bench/paced.lua
                if time.perf_counter() >= deadline:
                    return
                sent = time.perf_counter()
                await socket.send(_HEARTBEAT)
                async with asyncio.timeout(5):
                    while '"heartbeat"' not in await socket.recv():  # nothing else is sent to a watcher
                        pass
                samples.append((time.perf_counter() - sent) * 1000)
        except (TimeoutError, websockets.WebSocketException):
            failures += 1
        finally:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(5):
                    await socket.close()

    tasks = [asyncio.create_task(client(n)) for n in range(WS_CLIENTS)]
    # Every socket open (or failed) before the clock starts: handshakes are not what is measured.
    await all_open.wait()
    start.set()
    await asyncio.gather(*tasks)
    return samples, failures


@dataclass(frozen=True)
class Run:
    name: str
    url: str
    token: str | None
    against: str  # the run it is compared with, in the same round
    target: float  # the least share of ``against``'s req/s that meets the issue's target (0: none)
    process: str = ""  # the process answering (for --profile)


def runs_of(platform: Platform, seed: Seed) -> list[Run]:
    u, t = platform.urls, seed.token
    gw = u["gateway1"]  # one worker (the CLI's default)
    return [
        Run("bare Litestar GET /ping", f"{u['bare']}/ping", None, "", 0, "bare"),
        Run("bare Litestar, /auth/session's handler shape", f"{u['bare']}/api/v1/auth/session", None,
            "bare Litestar GET /ping", 0, "bare"),
        Run("kit GET /ping (RS256 token)", f"{u['kit']}/ping", t, "bare Litestar GET /ping", 0.7, "kit"),
        Run("player GET /auth/session, direct", f"{u['player']}/api/v1/auth/session", t,
            "bare Litestar GET /ping", 0.7, "player"),
        # The gateway runs with one worker: once the gateway's own work shrank (ADR 0004, "The p99: a reference
        # cycle per request"), a second worker process gained little throughput and, on the loaded 2-core
        # machine, cost p99 at load (three runs: 8.1/15.5/16.6 ms with one, 16.7/24.0/23.2 with two,
        # 2026-12-04). The two-worker row is kept for comparison, without a target.
        Run("player GET /auth/session, via gateway", f"{gw}/api/v1/auth/session", t,
            "player GET /auth/session, direct", 0.33, "gateway1"),
        Run("player /auth/session, via gateway, 2 workers", f"{u['gateway']}/api/v1/auth/session", t,
            "player GET /auth/session, direct", 0, "gateway"),
        Run("bare Litestar + asyncpg pool, PK read", f"{u['bare_db']}/players/{seed.player_id}", None, "", 0,
            "bare_db"),
        Run("player GET /players/me, direct", f"{u['player']}/api/v1/players/me", t, BARE_DB, 0.5, "player"),
        Run("player GET /players/me, via gateway", f"{gw}/api/v1/players/me", t,
            "player GET /players/me, direct", 0.33, "gateway1"),
        Run("wallet GET /wallet/balances", f"{u['wallet']}/api/v1/wallet/balances", t, BARE_DB, 0.5, "wallet"),
        Run("event GET /tournaments/{id}", f"{u['event']}/api/v1/tournaments/{seed.tournament_id}", t, BARE_DB, 0.5,
            "event"),
        Run("lobby GET /tables (10 open)", f"{u['lobby']}/api/v1/tables", t, BARE_DB, 0.5, "lobby"),
    ]  # fmt: skip


BARE_DB = "bare Litestar + asyncpg pool, PK read"


def profile(platform: Platform, run: Run, seconds: int, out: Path) -> None:
    """py-spy on the process answering ``run`` (granian's worker included) while wrk loads it."""
    process = platform.children[run.process]
    spy = subprocess.Popen(
        [str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(process.pid), "--subprocesses",
         "--duration", str(seconds), "--rate", "250",
         "--format", "raw", "--output", str(out), "--nonblocking"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    time.sleep(1)
    wrk(run.url, run.token, seconds - 2)
    spy.wait(timeout=60)
    print(f"py-spy collapsed stacks of {run.name}: {out}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; medians are reported")
    parser.add_argument("--only", default="", help="runs whose name contains this (and their baselines)")
    parser.add_argument("--profile", default="", help="py-spy the runs named (comma-separated parts)")
    parser.add_argument(
        "--rate-share",
        type=float,
        default=0.33,
        help="offered load of the latency measurement: this share of the asyncpg baseline's req/s in each round",
    )
    parser.add_argument("--rate", type=int, default=0, help="a fixed offered load (req/s) instead of --rate-share")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("bench: wrk is needed (Debian: apt-get install wrk)")

    platform = Platform()
    # A SIGTERM (timeout, Ctrl-C's cousin) still stops the services and drops the databases.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    try:
        platform.start_all()
        seed = make_seed(platform)
        runs = runs_of(platform, seed)
        if args.only:
            wanted = {r.name for r in runs if args.only in r.name}
            wanted |= {r.against for r in runs if r.name in wanted} - {""}
            wanted |= {r.against for r in runs if r.name in wanted} - {""}
            runs = [r for r in runs if r.name in wanted]
        if args.profile:
            for run in runs:
                if any(name in run.name for name in args.profile.split(",")):
                    profile(platform, run, args.seconds + 3, platform.logs / f"pyspy-{run.process}.txt")
            return
        ws_runs = {WS_DIRECT: platform.urls["lobby"], WS_GATEWAY: platform.urls["gateway1"]}
        if args.only and not any(args.only in name for name in ws_runs):
            ws_runs = {}
        ws_runs = {name: url.replace("http://", "ws://", 1) for name, url in ws_runs.items()}
        load = [os.getloadavg()[0]]
        rounds: list[dict[str, Measured]] = []
        ws_rounds: list[dict[str, tuple[list[float], int]]] = []
        # Latency is measured at one offered load, the same for the baseline and the services (--rate); the
        # judged gateway rows' in pairs with their direct run (PAIRS).
        judged = {r.name for r in runs if r.target and "via gateway" in r.name}
        paced = {r.name for r in runs if r.against == BARE_DB or ("via gateway" in r.name and r.name not in judged)}
        paced |= {r.against for r in runs if r.name in paced} - {""}
        # Rounds interleave every run, and each run is compared with its baseline in its own round: on a
        # shared machine the load drifts over minutes, and a ratio within one round cancels most of that.
        for number in range(args.rounds):
            measured: dict[str, Measured] = {}
            # The database baseline first: its throughput in this round sets the round's offered load.
            rate = args.rate or 1000  # (without the baseline in the runs)
            for run in sorted(runs, key=lambda r: r.name != BARE_DB):
                saturated = wrk(run.url, run.token, args.seconds, warm_up=number == 0)
                if run.name == BARE_DB and not args.rate:
                    rate = max(1, round(saturated[0] * args.rate_share))
                at_rate = wrk(run.url, run.token, args.seconds, rate=rate, warm_up=False) if run.name in paced else None
                measured[run.name] = Measured(saturated, at_rate, rate)
            by_name = {r.name: r for r in runs}
            for name in judged:
                pairs = []
                for k in range(PAIRS):
                    order = [by_name[by_name[name].against], by_name[name]]
                    if (number * PAIRS + k) % 2:
                        order.reverse()
                    got = {}
                    for run in order:
                        before, started = cpu_pressure_ms(), time.perf_counter()
                        paced_run = wrk(run.url, run.token, args.seconds, rate=rate, warm_up=False)
                        pressure = (cpu_pressure_ms() - before) / (time.perf_counter() - started)
                        got[run.name] = (paced_run[2], pressure, paced_run[3])
                    direct, gateway = got[by_name[name].against], got[name]
                    pairs.append(Pair(direct[0], gateway[0], direct[1], gateway[1], direct[2] + gateway[2]))
                measured[name] = replace(measured[name], pairs=tuple(pairs))
            rounds.append(measured)
            # The WebSocket rows, direct and through the gateway alternately first.
            order = list(ws_runs.items()) if number % 2 == 0 else list(reversed(ws_runs.items()))
            ws_rounds.append({name: ws_echo(url, seed.token, seed.table_ids, args.seconds) for name, url in order})
            load.append(os.getloadavg()[0])
    finally:
        platform.stop()
    if runs:
        report(runs, rounds, args, load)
    if ws_runs:
        report_ws(ws_rounds, args)


def _percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


def report_ws(rounds: list[dict[str, tuple[list[float], int]]], args: argparse.Namespace) -> None:
    print(
        f"\nWebSocket: the lobby's table socket (GET /api/v1/tables/{{id}}/ws, JWT in Authorization), {WS_CLIENTS} "
        f"sockets over the seeded tables, each sending a heartbeat after a random pause (mean "
        f"{1000 / WS_MESSAGES_PER_S:.0f} ms: ~{WS_CLIENTS * WS_MESSAGES_PER_S} messages/s) for {args.seconds}s and "
        f"timing the lobby's heartbeat back; direct and via the gateway (1 worker) in each round, median of "
        f"{len(rounds)} rounds.\n"
    )
    print(f"| {'run':<46} | {'messages':>8} | {'p50 ms':>6} | {'p99 ms':>6} | {'errors':>6} | {'p99 rounds':>20} |"
          f" {'added p99':>9} | target |")  # fmt: skip
    print(f"|{'-' * 48}|{'-' * 10}|{'-' * 8}|{'-' * 8}|{'-' * 8}|{'-' * 22}|{'-' * 11}|--------|")
    p99s: dict[str, float] = {}
    for name in (WS_DIRECT, WS_GATEWAY):
        count = statistics.median(len(r[name][0]) for r in rounds)
        p50 = statistics.median(_percentile(r[name][0], 0.5) for r in rounds)
        per_round = [_percentile(r[name][0], 0.99) for r in rounds]
        p99s[name] = p99 = statistics.median(per_round)
        errors = sum(r[name][1] for r in rounds)
        spread = " ".join(f"{x:.1f}" for x in per_round)
        added = target = ""
        if name == WS_GATEWAY:
            ok = p99 <= p99s[WS_DIRECT] + 5 and not errors
            added, target = f"{p99 - p99s[WS_DIRECT]:+.2f}", "met" if ok else "MISSED"
        print(f"| {name:<46} | {count:>8.0f} | {p50:>6.2f} | {p99:>6.2f} | {errors:>6} | {spread:>20} |"
              f" {added:>9} | {target:>6} |")  # fmt: skip
    added_p99 = p99s[WS_GATEWAY] - p99s[WS_DIRECT]
    print(
        f"\n{WS_GATEWAY}: p99 {added_p99:+.1f} ms over direct (target +5 ms): "
        f"{'met' if added_p99 <= 5 and not any(r[WS_GATEWAY][1] for r in rounds) else 'MISSED'}"
    )


@dataclass(frozen=True)
class Pair:
    """A gateway row's paced run and its direct run, back to back: p99s (ms), and the CPU pressure in each (ms
    per second during which some runnable task waited for a CPU)."""

    direct: float
    gateway: float
    direct_pressure: float
    gateway_pressure: float
    errors: int


@dataclass(frozen=True)
class Measured:
    saturated: tuple[float, float, float, int]  # req/s, p50, p99, non-2xx: as fast as the server answers
    at_rate: tuple[float, float, float, int] | None  # the same at the round's offered load (latency targets)
    rate: int  # that offered load, req/s
    pairs: tuple[Pair, ...] = ()  # a judged gateway row's paired paced runs (PAIRS per round)


def report(runs: list[Run], rounds: list[dict[str, Measured]], args: argparse.Namespace,
           load: list[float]) -> None:  # fmt: skip
    loads = " ".join(f"{x:.2f}" for x in load)
    rates = "/".join(str(next(iter(r.values())).rate) for r in rounds)
    how = f"{args.rate} req/s" if args.rate else f"{args.rate_share:.0%} of the asyncpg baseline's req/s in its round"
    print(
        f"\nHTTP, granian (uvloop) 1 worker per service and for the gateway (2 in its comparison row), "
        f"wrk -t{THREADS} -c{CONNECTIONS} -d{args.seconds}s, {os.cpu_count()} CPUs, "
        f"median of {args.rounds} interleaved rounds; 1-min load average at start and after each round: {loads}\n"
        f"req/s, p50, p99: saturated (each connection's next request as soon as its answer arrives: p99 is then "
        f"at least {CONNECTIONS}/throughput, the queue of {CONNECTIONS} connections). p99 at load: the same "
        f"{CONNECTIONS} connections offering {how} ({rates} req/s) with random pauses (bench/paced.lua), "
        f"for the baseline and the services alike: what the latency targets are checked against.\n"
    )
    rate_column = "p99 at load"
    print(f"| {'run':<46} | {'req/s':>7} | {'p50 ms':>6} | {'p99 ms':>6} | {'errors':>6} | {'vs':>22} |"
          f" {'share':>5} | {'rounds':>14} | {rate_column:>13} | target |")  # fmt: skip
    print(f"|{'-' * 48}|{'-' * 9}|{'-' * 8}|{'-' * 8}|{'-' * 8}|{'-' * 24}|{'-' * 7}|{'-' * 16}|{'-' * 15}|--------|")
    verdicts: list[str] = []

    def paced_p99(name: str) -> float | None:
        values = [r[name].at_rate[2] for r in rounds if r[name].at_rate is not None]  # type: ignore[index]
        values += [p.gateway for r in rounds for p in r[name].pairs]
        return statistics.median(values) if values else None

    paired: dict[str, list[Pair]] = {}

    for run in runs:
        rps, p50, p99 = (statistics.median(r[run.name].saturated[k] for r in rounds) for k in range(3))
        errors = sum(r[run.name].saturated[3] + (r[run.name].at_rate or (0, 0, 0, 0))[3] for r in rounds)
        errors += sum(p.errors for r in rounds for p in r[run.name].pairs)
        at_rate = paced_p99(run.name)
        rate_text = "" if at_rate is None else f"{at_rate:.2f}"
        if not run.against:
            print(f"| {run.name:<46} | {rps:>7.0f} | {p50:>6.2f} | {p99:>6.2f} | {errors:>6} | {'(baseline)':>22} |"
                  f" {'':>5} | {'':>14} | {rate_text:>13} |        |")  # fmt: skip
            continue
        ratios = [r[run.name].saturated[0] / r[run.against].saturated[0] for r in rounds]
        share = statistics.median(ratios)
        against = "direct" if "via gateway" in run.name else run.against[:22]
        target = ""
        if run.target:
            ok = share >= run.target and not errors
            if run.against == BARE_DB:
                assert at_rate is not None
                ok = ok and at_rate < 25
                verdicts.append(f"{run.name}: {share:.0%} of the asyncpg baseline (target 50%), p99 {at_rate:.1f} ms "
                                f"at load (target < 25 ms): {'met' if ok else 'MISSED'}")  # fmt: skip
            elif "via gateway" in run.name:
                # The p99 added: the median of the pairs' differences (each pair ran back to back).
                pairs = paired[run.name] = [p for r in rounds for p in r[run.name].pairs]
                added = statistics.median(p.gateway - p.direct for p in pairs)
                ok = ok and added <= 5
                verdicts.append(f"{run.name}: {share:.0%} of direct (target 33%), p99 {added:+.1f} ms at load, median "
                                f"of {len(pairs)} paired runs (target +5 ms): {'met' if ok else 'MISSED'}")  # fmt: skip
            else:
                verdicts.append(f"{run.name}: {share:.0%} of bare (target 70%): {'met' if ok else 'MISSED'}")
            target = "met" if ok else "MISSED"
        spread = " ".join(f"{r:.0%}" for r in ratios)
        print(f"| {run.name:<46} | {rps:>7.0f} | {p50:>6.2f} | {p99:>6.2f} | {errors:>6} | {against:>22} |"
              f" {share:>5.0%} | {spread:>14} | {rate_text:>13} | {target:>6} |")  # fmt: skip
    for name, pairs in paired.items():
        direct = statistics.median(p.direct for p in pairs)
        gateway = statistics.median(p.gateway for p in pairs)
        print(
            f"\n{name}: paced p99 (ms) direct and via gateway back to back, {PAIRS} pairs a round (order "
            "alternating); CPU pressure: ms per second during which some runnable task waited for a CPU"
        )
        print("| round | pair | direct p99 | via gateway p99 | added | CPU pressure direct / via gateway |")
        print("|-------|------|------------|-----------------|-------|-----------------------------------|")
        for number, p in enumerate(pairs):
            pressure = f"{p.direct_pressure:>15.0f} / {p.gateway_pressure:<15.0f}"
            print(f"| {number // PAIRS:>5} | {number:>4} | {p.direct:>10.2f} | {p.gateway:>15.2f} |"
                  f" {p.gateway - p.direct:>+5.1f} | {pressure} |")  # fmt: skip
        added = sorted(p.gateway - p.direct for p in pairs)
        print(f"medians: direct {direct:.2f}, via gateway {gateway:.2f} (difference {gateway - direct:+.2f}); added "
              f"per pair: median {statistics.median(added):+.2f}, quartiles {_percentile(added, 0.25):+.2f} / "
              f"{_percentile(added, 0.75):+.2f}")  # fmt: skip
    print()
    for verdict in verdicts:
        print(verdict)


if __name__ == "__main__":
    main()
