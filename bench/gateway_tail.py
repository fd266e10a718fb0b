"""Where the p99 of ``GET /players/me`` through the gateway comes from (issue 16, ADR 0004).

Starts the HTTP benchmark's platform (bench/http_bench_platform.py) and, next to it, the player and a one-worker
gateway wrapped in bench/tail_probe.py's timing probes (the gateway's probe sends to the probed player). Then, in
interleaved rounds, loads ``/players/me`` directly and through the gateway like bench/http_bench.py does (a
saturated run, then the paced run at the offered load the latency target is checked at) and prints, for each
paced run: wrk's p50/p99/max; the player's own p99 and max (time in its app); the gateway's time in its app and
its upstream exchange; every garbage collection in either process (pauses over 1 ms); event-loop stalls; and
how long runnable tasks waited for a CPU during the run (``/proc/pressure/cpu``, and per process from
``/proc/<pid>/task/*/schedstat``).

Usage: ``.venv/bin/python bench/gateway_tail.py [--seconds 3] [--rounds 6] [--rate 1350]``
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from http_bench import CONNECTIONS, PACED, THREADS
from http_bench_platform import BIN, ROOT, Platform, free_port, granian
from http_bench_platform import seed as make_seed


def wrk_latency(url: str, token: str, seconds: int, rate: int) -> dict[str, float]:
    """wrk's req/s, p50, p90, p99 and max (ms); ``rate`` 0: saturated, else paced (bench/paced.lua)."""
    paced = ["-s", str(PACED), url, "--", str(rate), str(CONNECTIONS)] if rate else [url]
    out = subprocess.run(
        ["wrk", f"-t{THREADS}", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency",
         "-H", f"Authorization: Bearer {token}", *paced],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}

    def ms(pattern: str) -> float:
        value, unit = re.search(pattern, out).groups()  # type: ignore[union-attr]
        return float(value) * scale[unit]

    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "p50": ms(r"\s50%\s+([\d.]+)(us|ms|s)"),
        "p90": ms(r"\s90%\s+([\d.]+)(us|ms|s)"),
        "p99": ms(r"\s99%\s+([\d.]+)(us|ms|s)"),
        "max": ms(r"Latency\s+[\d.]+\w+\s+[\d.]+\w+\s+([\d.]+)(us|ms|s)"),
    }


def run_delay_ms() -> float:
    """Time during which some runnable task waited for a CPU (pressure stall information, µs)."""
    some = Path("/proc/pressure/cpu").read_text().splitlines()[0]
    return int(some.rpartition("total=")[2]) / 1000


def process_delay_ms(pid: int) -> float:
    """Run-queue wait of every thread of ``pid`` and of its children (granian's worker processes)."""
    total = 0
    pids = [pid]
    with_children = Path(f"/proc/{pid}/task/{pid}/children")
    if with_children.exists():
        pids += [int(p) for p in with_children.read_text().split()]
    for p in pids if pid else []:
        for task in Path(f"/proc/{p}/task").glob("*"):
            with contextlib.suppress(OSError, IndexError):
                total += int((task / "schedstat").read_text().split()[1])
    return total / 1e6


def pct(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


@dataclass
class Target:
    name: str
    url: str
    gateway: str  # the probed gateway answering this run ("": direct)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--rate", type=int, default=0, help="offered req/s (default: 33%% of the asyncpg baseline)")
    parser.add_argument(
        "--variants",
        default="1",
        help="gateways to compare, comma-separated: 1 (one worker), "
        "2 (two workers), 1c8 (one worker, at most 8 requests in flight to the player), ...",
    )
    parser.add_argument("--plain", action="store_true", help="also the unprobed player and gateway")
    parser.add_argument("--no-saturate", action="store_true", help="no saturated run before each paced one")
    parser.add_argument(
        "--pyspy",
        default="",
        help="a directory: py-spy the player and the first gateway during "
        "one more paced run through it (collapsed stacks; bench/pyspy_top.py summarises)",
    )
    args = parser.parse_args()

    platform = Platform()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    try:
        platform.start_all()
        seed = make_seed(platform)
        env = platform.env
        player_port = free_port()
        platform.start("player_probe", granian("tail_probe:player_app", player_port), "/ready", player_port)
        platform.env = {
            **env,
            "TABLIUM_GATEWAY_CONFIG": str(ROOT / "gateway/kong.yml"),
            "TABLIUM_GATEWAY_UPSTREAMS": f"player={platform.urls['player_probe']}",
            "TABLIUM_GATEWAY_DISABLED_PLUGINS": "rate-limiting",
        }
        urls = platform.urls
        targets = [Target("direct (probed)", f"{urls['player_probe']}/api/v1/players/me", "")]
        for variant in args.variants.split(","):
            workers, _, cap = variant.partition("c")
            port = free_port()
            argv = granian("tail_probe:gateway_app", port)
            argv[argv.index("--workers") + 1] = workers
            platform.env["TABLIUM_GATEWAY_UPSTREAM_CONNECTIONS"] = cap or "1000"
            platform.start(f"gw{variant}", argv, "/api/v1/auth/jwks", port)
            targets.append(
                Target(f"via gateway {variant}", f"{urls[f'gw{variant}']}/api/v1/players/me", f"gw{variant}")
            )
        platform.env = env
        if args.plain:
            targets += [
                Target("direct", f"{urls['player']}/api/v1/players/me", []),
                Target("via gateway", f"{urls['gateway1']}/api/v1/players/me", []),
            ]
        rate = args.rate
        if not rate:
            bare = wrk_latency(f"{urls['bare_db']}/players/{seed.player_id}", seed.token, args.seconds, 0)
            rate = round(bare["rps"] * 0.33)
        for target in targets:
            wrk_latency(target.url, seed.token, 1, 0)  # warm-up
        print(f"offered load {rate} req/s, {args.seconds}s paced runs, gateways {args.variants}, "
              f"load {os.getloadavg()[0]:.2f}\n")  # fmt: skip
        header = (f"{'round':>5} {'run':<18} {'p50':>6} {'p99':>6} {'max':>6} | {'pl p99':>6} {'pl max':>6} "
                  f"{'pl gc>1ms':>22} {'pl lag':>6} | {'gw p99':>6} {'up p99':>6} {'gw gc>1ms':>14} {'gw lag':>6} | "
                  f"{'rq all':>6} {'rq pl':>5} {'rq gw':>5} {'load':>5}")  # fmt: skip
        print(header)
        results: dict[str, list[float]] = {t.name: [] for t in targets}
        for number in range(args.rounds):
            order = targets if number % 2 == 0 else list(reversed(targets))
            for target in order:
                if not args.no_saturate:
                    wrk_latency(target.url, seed.token, args.seconds, 0)
                probes = ["player_probe", *([target.gateway] if target.gateway else [])]
                pids = {"player": platform.children["player_probe"].pid,
                        "gateway": platform.children[target.gateway].pid if target.gateway else 0}  # fmt: skip
                for probe in probes:
                    httpx.get(f"{urls[probe]}/__probe")
                before = run_delay_ms(), {k: process_delay_ms(p) for k, p in pids.items()}
                started = time.perf_counter()
                got = wrk_latency(target.url, seed.token, args.seconds, rate)
                elapsed = time.perf_counter() - started
                after = run_delay_ms(), {k: process_delay_ms(p) for k, p in pids.items()}
                dumps: dict[str, Any] = {p: httpx.get(f"{urls[p]}/__probe").json() for p in probes}
                results[target.name].append(got["p99"])
                none = {"requests": [], "upstream": [], "gc": [], "lag": []}
                pl, gw = dumps["player_probe"], dumps.get(target.gateway, none)

                def gcs(d: dict[str, Any]) -> str:
                    long = [(g, ms) for g, ms in d["gc"] if ms > 1]
                    n = [sum(1 for g, _ in d["gc"] if g == k) for k in range(3)]
                    worst = max((ms for _, ms in d["gc"]), default=0.0)
                    return f"{n[0]}/{n[1]}/{n[2]} {len(long)}>1 max{worst:.1f}"

                def per_s(key: str, before: Any = before, after: Any = after, elapsed: float = elapsed) -> float:
                    return (after[1][key] - before[1][key]) / elapsed

                print(
                    f"{number:>5} {target.name:<18} {got['p50']:>6.2f} {got['p99']:>6.2f} {got['max']:>6.1f} | "
                    f"{pct(pl['requests'], 0.99):>6.2f} {max(pl['requests'], default=0):>6.1f} {gcs(pl):>22} "
                    f"{max(pl['lag'], default=0):>6.1f} | "
                    f"{pct(gw['requests'], 0.99) if gw['requests'] else 0:>6.2f} "
                    f"{pct(gw['upstream'], 0.99) if gw['upstream'] else 0:>6.2f} {gcs(gw):>14} "
                    f"{max(gw['lag'], default=0):>6.1f} | "
                    f"{(after[0] - before[0]) / elapsed:>6.0f} {per_s('player'):>5.0f} {per_s('gateway'):>5.0f} "
                    f"{os.getloadavg()[0]:>5.2f}",
                    flush=True,
                )  # fmt: skip
        if args.pyspy:
            Path(args.pyspy).mkdir(parents=True, exist_ok=True)
        for gateway in targets[1:] if args.pyspy else []:
            spies = [
                subprocess.Popen(
                    [
                        str(BIN / "py-spy"),
                        "record",
                        "--pid",
                        str(platform.children[name].pid),
                        "--subprocesses",
                        "--duration",
                        str(args.seconds + 2),
                        "--rate",
                        "250",
                        "--format",
                        "raw",
                        "--nonblocking",
                        "--output",
                        str(Path(args.pyspy) / f"pyspy-{name}-{gateway.gateway}.txt"),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                for name in ("player_probe", gateway.gateway)
            ]
            time.sleep(1)
            wrk_latency(gateway.url, seed.token, args.seconds, rate)
            for spy in spies:
                spy.wait(timeout=60)
            print(f"py-spy of the player and {gateway.name} at {rate} req/s: {args.pyspy}")
        print("\nwrk p99 per round (ms), median [min-max]:")
        for name, p99s in ((n, v) for n, v in results.items() if v):
            print(f"  {name:<22} {statistics.median(p99s):6.2f} [{min(p99s):.2f}-{max(p99s):.2f}]  "
                  + " ".join(f"{x:.1f}" for x in p99s))  # fmt: skip
        print("\nrq: ms per second of the run during which some task waited for a CPU (all: /proc/pressure/cpu), and"
              " the run-queue wait of the probed player's and gateway's threads;"
              " pl/gw gc: gen0/gen1/gen2 collections, how many paused > 1 ms, the longest (ms); lag: the event"
              " loop's longest stall seen by a 5 ms timer (ms).")  # fmt: skip
    finally:
        platform.stop()


if __name__ == "__main__":
    main()
