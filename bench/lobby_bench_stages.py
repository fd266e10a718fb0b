"""The lobby benchmark's stage table (``--stages``): where an action's latency goes, stage by stage.

Joins three clocks' records, all ``time.time()`` on this one machine: the bots' send of each timed action
and each of the table's other clients' receipt of its ``action-broadcast`` (bench/lobby_bench_clients.py),
and the lobby's trace (``TABLIUM_LOBBY_STAGE_TRACE``, services/stages.py): when the socket's reader had the
message, had the table's runner, had decided, had a lane, had committed and had delivered it to the sockets'
queues, and for each socket when the broadcast was queued, when its write began and ended.
"""

from __future__ import annotations

import collections
from pathlib import Path
from typing import Any

import msgspec

# (name, what it is) in the order an action passes them.
STAGES = (
    ("bot send → lobby read", "the bot's send, the kernel, granian, until the socket's reader has it"),
    ("runner lock", "waiting for the table's runner (a deal, a clock or another action holding it)"),
    ("decide", "the engine and the messages (hot path)"),
    ("lane wait", "waiting for a free statement connection (hot path)"),
    ("statement", "the one-statement commit (hot path)"),
    ("locked path", "a cold cache or the hand's end: the ORM transaction under the row lock"),
    ("hand's end", "of which the hand's last action (runner lock held → committed, whichever way it is written)"),
    ("publish", "the hub: encode once, into each socket's queue"),
    ("socket queue", "behind the socket's earlier messages, until its writer sends it"),
    ("socket send", "granian's send_data"),
    ("lobby sent → bot read", "the kernel and the bot's own loop until its client reads it"),
    ("end to end", "the bench's latency: the bot's send → another client's read"),
)


def _pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


def stage_table(trace: Path, result: dict[str, Any], seats: dict[tuple[str, str], int]) -> dict[str, Any]:
    """Per-stage samples (ms) of the timed actions, the loops' lags, and the stages' means over the slowest
    1% of receipts. ``seats``: (table, player id) → seat."""
    start, end = result["window"]
    actions: dict[tuple[str, int], list[Any]] = {}
    writes: dict[tuple[str, int, int], list[Any]] = {}
    lobby_lags: list[float] = []
    for line in trace.read_bytes().splitlines():
        for record in msgspec.json.decode(line):
            kind = record[0]
            if kind == "a":
                actions[(record[1], record[2])] = record
            elif kind == "w":
                seat = seats.get((record[1], record[3]))
                if seat is not None:
                    writes[(record[1], record[2], seat)] = record
            elif kind == "l" and start <= record[1] < end:
                lobby_lags.append(record[2] * 1000)
    sent = {(table, seq): at for table, seq, at in result["sends"]}
    samples: dict[str, list[float]] = collections.defaultdict(list)
    paths: collections.Counter[str] = collections.Counter()
    for key, at in sent.items():
        record = actions.get(key)
        if record is None:
            continue
        _, _, _, path, received, locked, decided, lane, committed, published = record
        paths[path] += 1
        samples["bot send → lobby read"].append((received - at) * 1000)
        samples["runner lock"].append((locked - received) * 1000)
        if path == "hot":
            samples["decide"].append((decided - locked) * 1000)
            samples["lane wait"].append((lane - decided) * 1000)
            samples["statement"].append((committed - lane) * 1000)
        else:
            samples["locked path"].append((committed - locked) * 1000)
            if path == "end":
                samples["hand's end"].append((committed - locked) * 1000)
        samples["publish"].append((published - committed) * 1000)
    tail: list[tuple[float, dict[str, float]]] = []
    for table, seq, seat, read_at in result["receipts"]:
        at = sent.get((table, seq))
        record = actions.get((table, seq))
        write = writes.get((table, seq, seat))
        if at is None or record is None or write is None:
            continue
        _, _, _, _, queued, began, ended = write
        samples["socket queue"].append((began - queued) * 1000)
        samples["socket send"].append((ended - began) * 1000)
        samples["lobby sent → bot read"].append((read_at - ended) * 1000)
        samples["end to end"].append((read_at - at) * 1000)
        _, _, _, path, received, locked, decided, lane, committed, published = record
        parts = {
            "bot send → lobby read": received - at,
            "runner lock": locked - received,
            "decide, lane, statement / locked path": committed - locked,
            "publish": published - committed,
            "socket queue": began - queued,
            "socket send": ended - began,
            "lobby sent → bot read": read_at - ended,
        }
        tail.append((read_at - at, {k: v * 1000 for k, v in parts.items()}))
    tail.sort(key=lambda item: item[0])
    slowest = tail[-max(1, len(tail) // 100) :] if tail else []
    tail_means = {
        name: sum(parts[name] for _, parts in slowest) / len(slowest) for name in (slowest[0][1] if slowest else {})
    }
    return {
        "samples": samples,
        "paths": dict(paths),
        "matched": sum(paths.values()),
        "timed": len(sent),
        "lobby_lags": lobby_lags,
        "bot_lags": result.get("bot_lags", []),
        "tail_means": tail_means,
    }


def print_stage_table(name: str, stages: dict[str, Any]) -> None:
    samples = stages["samples"]
    print(f"\nStages, {name}: {stages['matched']} of {stages['timed']} timed actions matched in the lobby's trace "
          f"(paths: {stages['paths']})\n")  # fmt: skip
    print(f"| {'stage':<24} | {'n':>6} | {'p50 ms':>7} | {'p99 ms':>7} | {'max ms':>7} | what |")
    print(f"|{'-' * 26}|{'-' * 8}|{'-' * 9}|{'-' * 9}|{'-' * 9}|------|")
    for stage, what in STAGES:
        values = samples.get(stage, [])
        print(f"| {stage:<24} | {len(values):>6} | {_pct(values, 0.5):>7.1f} | {_pct(values, 0.99):>7.1f} | "
              f"{max(values, default=float('nan')):>7.1f} | {what} |")  # fmt: skip
    for label, lags in (("lobby loop lag (50 ms sleep)", stages["lobby_lags"]),
                        ("bots' loop lag (10 ms sleep)", stages["bot_lags"])):  # fmt: skip
        print(f"| {label:<24} | {len(lags):>6} | {_pct(lags, 0.5):>7.1f} | {_pct(lags, 0.99):>7.1f} | "
              f"{max(lags, default=float('nan')):>7.1f} | how late a sleep woke |")  # fmt: skip
    means = stages["tail_means"]
    if means:
        print("\nThe slowest 1% of receipts (end to end), mean ms per stage: "
              + ", ".join(f"{k} {v:.1f}" for k, v in means.items()))  # fmt: skip
