"""Run every benchmark in turn (``make bench``); each prints its own table with its baseline."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
SUITES = [
    "http_bench.py",
    "relay_bench.py",
    "poker_bench.py",
    "wallet_bench.py",
    "tourney_bench.py",
    "event_bench.py",
    "lobby_bench.py",
    "rakeback_bench.py",
    "chain_bench.py",
]


def main() -> None:
    failed = []
    for suite in SUITES:
        print(f"\n=== {suite}", flush=True)
        if subprocess.run([sys.executable, str(BENCH / suite)], check=False).returncode != 0:
            failed.append(suite)
    if failed:
        raise SystemExit(f"benchmarks failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
