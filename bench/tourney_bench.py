"""Tournament engine: whole events simulated to a winner with random bust-outs (engine only).

    .venv/bin/python bench/tourney_bench.py [--sizes 10000,100000,250000] [--seats 9] [--seed 1]

Each size runs in its own process (so peak RSS is that run's own). Per run: wall time, hands, eliminations,
moves per elimination, the time of each hand report that made a balancing decision (a move planned,
redirected or withdrawn, a seat re-chosen, a table broken) — mean, p99 and max — and, apart, the
hand-for-hand reports (the last table of each hand-for-hand hand releases every table: O(tables) by nature).

Baseline, measured in the same run on the same field just after the seat draw: finding the shortest and
the longest table the naive way (a scan of every table, what balancing costs without an index), against
the engine's sorted index; and choosing the mover [11A] exactly (the least-moved player due the big blind
over every longest table — right after the draw every table is a longest one) by a scan, against the
engine's movers index. Target: 250,000 entrants in under 60 s on one core, and a balancing cost that
does not grow with the field.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time


def lookup_costs(entrants: int, seats: int, seed: int, repeats: int = 200) -> tuple[float, float, float, float]:
    """Microseconds per shortest+longest lookup (naive scan, engine index) and per exact mover choice
    (naive scan, engine index), on a freshly drawn field."""
    from tablium_event.domain.config import TournamentConfig
    from tablium_event.domain.engine import Tournament

    tournament = Tournament(TournamentConfig(seats_per_table=seats, seed=seed))
    for i in range(entrants):
        tournament.register(f"p{i}")
    tournament.start()
    tables = list(tournament.tables.values())
    began = time.perf_counter()
    for _ in range(repeats):
        min(tables, key=lambda t: t.key())
        max(tables, key=lambda t: t.key())
    naive = (time.perf_counter() - began) / repeats
    order = tournament.order
    began = time.perf_counter()
    for _ in range(repeats):
        order.first()
        order.last()
    indexed = (time.perf_counter() - began) / repeats
    longest = order.last()[0]
    due = tournament.balancing.candidate
    scans = max(5, repeats // 10)  # a scan of every table is slow: fewer repeats
    began = time.perf_counter()
    for _ in range(scans):
        # Every table at the longest count, its candidate's moves: what an exact pick costs without an index.
        min(
            ((candidate.moves, -t.rank, t.id) for t in tables if t.effective == longest if (candidate := due(t))),
            default=None,
        )
    naive_mover = (time.perf_counter() - began) / scans
    movers = tournament.movers
    began = time.perf_counter()
    for _ in range(repeats):
        top = movers.last()
        due(tournament.tables[top[4]])
    indexed_mover = (time.perf_counter() - began) / repeats
    return naive * 1e6, indexed * 1e6, naive_mover * 1e6, indexed_mover * 1e6


def one(entrants: int, seats: int, seed: int) -> dict[str, float]:
    from tablium_event.domain.simulator import simulate

    naive_us, indexed_us, naive_mover_us, indexed_mover_us = lookup_costs(entrants, seats, seed)
    began = time.perf_counter()
    report = simulate(entrants, seats=seats, seed=seed, time_decisions=True)
    wall = time.perf_counter() - began
    times = report.decision_times
    steps = report.step_times
    assert report.moves_mid_hand == 0
    assert report.prizes_paid == report.prize_pool
    return {
        "naive_lookup_us": naive_us,
        "indexed_lookup_us": indexed_us,
        "naive_mover_us": naive_mover_us,
        "indexed_mover_us": indexed_mover_us,
        "steps": len(steps),
        "step_max_ms": max(steps) * 1e3 if steps else 0.0,
        "entrants": entrants,
        "wall_s": wall,
        "hands": report.hands,
        "eliminations": report.eliminations,
        "moves": report.moves,
        "moves_per_elimination": report.moves / max(1, report.eliminations),
        "max_spread": report.max_spread_after_balance,
        "decisions": len(times),
        "decision_mean_us": statistics.fmean(times) * 1e6 if times else 0.0,
        "decision_p99_us": sorted(times)[int(len(times) * 0.99)] * 1e6 if times else 0.0,
        "decision_max_us": max(times) * 1e6 if times else 0.0,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,250000")
    parser.add_argument("--seats", type=int, default=9)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.one, args.seats, args.seed)))
        return
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        done = subprocess.run(
            [sys.executable, __file__, "--one", str(size), "--seats", str(args.seats), "--seed", str(args.seed)],
            check=True,
            capture_output=True,
            text=True,
            timeout=170,
        )
        rows.append(json.loads(done.stdout))
    print(f"tournament engine, {args.seats}-max, seed {args.seed}, random bust-outs to a winner (one core)")
    header = (
        f"{'entrants':>9} {'wall s':>7} {'hands':>8} {'moves':>7} {'moves/elim':>10} {'spread':>6} "
        f"{'decisions':>9} {'mean us':>8} {'p99 us':>8} {'max us':>9} {'h4h facts':>10} {'step max ms':>11} "
        f"{'peak MB':>8}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r['entrants']:>9} {r['wall_s']:>7.2f} {r['hands']:>8} {r['moves']:>7} "
            f"{r['moves_per_elimination']:>10.3f} {r['max_spread']:>6} {r['decisions']:>9} "
            f"{r['decision_mean_us']:>8.1f} {r['decision_p99_us']:>8.1f} {r['decision_max_us']:>9.0f} "
            f"{r['steps']:>10} {r['step_max_ms']:>11.1f} {r['peak_rss_mb']:>8.0f}"
        )
    print()
    print("baseline, same run, after the seat draw, us per lookup: shortest + longest table; exact mover [11A]")
    print(
        f"{'entrants':>9} {'tables':>7} {'naive scan':>10} {'engine index':>12} {'mover scan':>10} {'mover index':>11}"
    )
    for r in rows:
        tables = -(-int(r["entrants"]) // args.seats)
        print(
            f"{r['entrants']:>9} {tables:>7} {r['naive_lookup_us']:>10.1f} {r['indexed_lookup_us']:>12.2f} "
            f"{r['naive_mover_us']:>10.1f} {r['indexed_mover_us']:>11.2f}"
        )
    biggest = rows[-1]
    verdict = "PASS" if biggest["wall_s"] < 60 else "FAIL"
    print(f"target: {biggest['entrants']} entrants to a winner in < 60 s: {verdict} ({biggest['wall_s']:.1f} s)")


if __name__ == "__main__":
    main()
