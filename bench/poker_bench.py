"""Poker engine benchmark: tablium-poker against its peers, measured in the same run.

1. 7-card evaluations per second through the engine's API (batch ``evaluate_many`` and one call
   per hand ``evaluate``) on the same seeded hands as ../shared/bench/evaluators.py, which is run
   here for PokerKit, treys, phevaluator and eval7.
2. Complete random 6-max hands per second with the policy of ../shared/bench/pokerkit_hands.py
   (uniform among fold-when-facing-a-bet, check/call, bet/raise to a uniform legal amount; stacks
   uniform 2,000-25,000 at 50/100), which is run here for PokerKit. The engine's timed loop includes
   the seeded HMAC-DRBG shuffle of every hand, the events and the showdown.

usage: .venv/bin/python bench/poker_bench.py [EVAL_N] [HANDS] [REPEATS]
"""

import json
import random
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

from tablium_poker import Hand, TableRules, deck_from_seed, evaluate, evaluate_many, parse_card

PEERS = Path(__file__).resolve().parents[1].parent / "shared" / "bench"
EVAL_N = int(sys.argv[1]) if len(sys.argv) > 1 else 50_000
HANDS = int(sys.argv[2]) if len(sys.argv) > 2 else 5_000
REPEATS = int(sys.argv[3]) if len(sys.argv) > 3 else 3
PEER_HANDS = 1_000  # PokerKit plays ~400 hands/s; this keeps the run under two minutes


def run_peer(script: str, *args: int) -> tuple[dict[str, object], str]:
    """Run a peer script; return the JSON summary it prints last and its whole output."""
    out = subprocess.run(
        [sys.executable, str(PEERS / script), *map(str, args)], capture_output=True, text=True, check=True
    ).stdout
    summary: dict[str, object] = json.loads(out[out.index("\n{") + 1 :])
    return summary, out


def eval_hands() -> list[tuple[int, ...]]:
    # The same seeded hands as evaluators.py (its SEED and sampling), as engine card ids.
    ranks, suits = "23456789TJQKA", "cdhs"
    deck = [r + s for r in ranks for s in suits]
    rng = random.Random(20240601)
    return [tuple(parse_card(c) for c in rng.sample(deck, 7)) for _ in range(EVAL_N)]


def median_rate(count: int, fn: object) -> float:
    rates = []
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        fn()  # type: ignore[operator]
        rates.append(count / (time.perf_counter() - t0))
    return statistics.median(rates)


def play_hand(rng: random.Random, rules: TableRules) -> int:
    stacks = {seat: rng.randint(2_000, 25_000) for seat in range(6)}
    hand = Hand.start(rules, stacks, 5, deck_from_seed(rng.randbytes(32), 20))
    actions = 0
    while not hand.is_finished:
        legal = hand.legal_actions()
        choices = [1]
        if legal.call:
            choices.append(0)
        if legal.max_to:
            choices.append(2)
        choice = rng.choice(choices)
        if choice == 0:
            hand.fold(legal.seat)
        elif choice == 1:
            hand.check_or_call(legal.seat)
        else:
            hand.bet_or_raise_to(legal.seat, rng.randint(legal.min_to, legal.max_to))
        actions += 1
    assert sum(hand.stack) == sum(stacks.values()), "chips not conserved"
    return actions


def engine_hands_per_s() -> tuple[float, float]:
    rules = TableRules(50, 100)
    rates, actions = [], 0
    for r in range(REPEATS):
        rng = random.Random(1000 + r)
        t0 = time.perf_counter()
        actions = sum(play_hand(rng, rules) for _ in range(HANDS))
        rates.append(HANDS / (time.perf_counter() - t0))
    return statistics.median(rates), actions / HANDS


def main() -> None:
    hands = eval_hands()
    batch = median_rate(EVAL_N, lambda: evaluate_many(hands))
    single = median_rate(EVAL_N, lambda: [evaluate(h) for h in hands])
    peers = run_peer("evaluators.py", EVAL_N, REPEATS)[0]["results"]
    assert isinstance(peers, dict)
    treys = next(v["median_evals_per_s"] for k, v in peers.items() if k.startswith("treys"))

    ours, actions = engine_hands_per_s()
    pokerkit, pk_out = run_peer("pokerkit_hands.py", PEER_HANDS, REPEATS)
    pk_rate = float(pokerkit["median_hands_per_s"])  # type: ignore[arg-type]
    # The peer prints "run r: ... (A player actions/hand ...)": show it so the policies compare.
    pk_actions = statistics.median(float(a) for a in re.findall(r"\(([\d.]+) player actions/hand", pk_out))

    rows = [("7-card evaluations/s", "", 0.0)]
    rows += [(f"  {name}", f"{v['median_evals_per_s']:,.0f}", 0.0) for name, v in peers.items()]
    rows += [
        ("  tablium-poker evaluate_many (batch, ids checked)", f"{batch:,.0f}", batch / treys),
        ("  tablium-poker evaluate (per hand, ids checked)", f"{single:,.0f}", single / treys),
        ("random 6-max hands/s", "", 0.0),
        (f"  pokerkit 0.7.7 ({PEER_HANDS} hands x {REPEATS}, {pk_actions:.2f} actions/hand)", f"{pk_rate:,.0f}", 0.0),
        (f"  tablium-poker ({HANDS} hands x {REPEATS}, {actions:.2f} actions/hand)", f"{ours:,.0f}", ours / pk_rate),
    ]
    print(f"{'measure':58s} {'median':>14s} {'vs peer':>8s}")
    for name, value, ratio in rows:
        print(f"{name:58s} {value:>14s} {f'{ratio:.1f}x' if ratio else '':>8s}")
    print("(eval ratio vs treys; hands ratio vs PokerKit; targets >= 10x and >= 20x)")


if __name__ == "__main__":
    main()
