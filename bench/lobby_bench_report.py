"""The lobby bench's printed results: the runs' table and a py-spy profile's top frames."""

from __future__ import annotations

import argparse
import collections
import os
from pathlib import Path
from typing import Any


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


def report(rows: list[tuple[str, dict[str, Any]]], args: argparse.Namespace) -> None:
    print(f"\nLobby: tables of 6 bots, think {args.think:.1f} s, {args.seconds:.0f} s measured, "
          f"{os.cpu_count()} CPUs shared with whatever else runs\n")  # fmt: skip
    head = (f"| {'run':<34} | {'tables':>6} | {'sockets':>7} | {'act/s':>6} | {'msg/s':>7} | {'p50 ms':>7} | "
            f"{'p99 ms':>7} | {'max ms':>7} | {'lost':>4} | {'dup':>4} | {'gaps':>4} | {'drop':>4} | {'CPU %':>5} | "
            f"{'wait %':>6} | {'bots %':>6} | {'bots wait %':>11} | {'KB/sock':>7} | {'RSS MB':>6} | {'busy':>4} | "
            f"{'load':>11} |")  # fmt: skip
    print(head)
    print("|" + "|".join("-" * len(cell) for cell in head.split("|")[1:-1]) + "|")
    for name, r in rows:
        samples = r["samples"]
        seconds = args.seconds
        lost = r["lost"] + r["phantom"]
        dropped = r["unsynced"] + r["closed_early"]
        print(
            f"| {name:<34} | {r['tables']:>6} | {r['sockets']:>7} | {r['committed'] / seconds:>6.0f} | "
            f"{r['received'] / seconds:>7.0f} | {percentile(samples, 0.5):>7.1f} | {percentile(samples, 0.99):>7.1f} | "
            f"{max(samples, default=float('nan')):>7.1f} | {lost:>4} | {r['duplicated']:>4} | "
            f"{r['gaps'] + r['backwards']:>4} | {dropped:>4} | {r['cpu'] * 100:>5.0f} | {r['starved'] * 100:>6.0f} | "
            f"{r['bots_cpu'] * 100:>6.0f} | {r['bots_wait'] * 100:>11.0f} | "
            f"{r['rss_per_socket'] / 1024:>7.1f} | "
            f"{r['rss'] / 2**20:>6.0f} | {r['busy']:>4.0%} | {r['load'][0]:>4.1f} → {r['load'][1]:>4.1f} |"
        )  # fmt: skip
    print("\nact/s: actions committed (lobby: hand_actions rows in the window; bare: actions sent); msg/s: messages"
          " received by all clients; p50/p99/max: an action's send → its broadcast at the table's other five"
          " clients; lost: actions a client should have received but did not, or received but not in the"
          " database; dup: received twice; gaps: seq discontinuities after a snapshot; drop: sockets closed"
          " before the end or before their snapshot;"
          " CPU %: the server's processes (100 = one core); wait %: the time they were runnable but waited for a"
          " CPU (100 = one process always waiting: other load); bots %: the bot processes' CPU (100 = one core);"
          " bots wait %: the time the bot processes were runnable but waited for a CPU;"
          " KB/sock: the server's RSS growth over the sockets;"
          " busy: the whole machine's CPU in the window; load: the 1-minute load average, start → end.")  # fmt: skip
    for name, r in rows:
        if r.get("timeouts") or r.get("errors"):
            kinds = ", ".join(f"{count} x {kind!r}" for kind, count in r.get("error_kinds", {}).most_common(3))
            print(f"{name}, {r['tables']} tables: {r['timeouts']} time-outs, {r['errors']} errors to bots ({kinds})")


def print_profile(path: Path, top: int = 20) -> None:
    """py-spy's raw (collapsed) stacks: the functions with the most samples on top of the stack."""
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        frames = stack.split(";")
        total += int(count)
        own[frames[-1]] += int(count)
    for frame, count in own.most_common(top):
        print(f"  {count / max(1, total):>6.1%}  {frame[:140]}")
