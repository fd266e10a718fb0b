"""Properties over random tournaments (engine only)."""

from __future__ import annotations

import json
import random

import pytest
from engine_checks import check_finished, check_invariants
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tablium_event.domain import payouts as pay
from tablium_event.domain.config import Break, Level, PayoutRule, Structure, TournamentConfig, TournamentRuleError
from tablium_event.domain.engine import Tournament
from tablium_event.domain.simulator import TableRunner, simulate

configs = st.builds(
    TournamentConfig,
    seats_per_table=st.integers(2, 10),
    buy_in=st.integers(0, 5_000),
    guarantee=st.integers(0, 200_000),
    tolerance=st.integers(1, 2),
    break_order=st.sampled_from(["highest", "lowest", "random"]),
    hand_for_hand_margin=st.integers(1, 3),
    payout=st.builds(
        PayoutRule,
        round_to=st.sampled_from([1, 5, 100]),
        # A fixed table may pay more places than a small field has: the pool is still paid out exactly.
        fixed_bp=st.sampled_from([None, None, (5_000, 3_000, 2_000), (4_000, 2_500, 1_500, 1_000, 1_000)]),
    ),
    structure=st.just(
        Structure(levels=(Level(10, 20, duration_s=60), Level(20, 40, duration_s=60)), breaks=(Break(1, 30),))
    ),
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    config=configs,
    entrants=st.integers(2, 160),
    seed=st.integers(0, 2**31),
    busts=st.sampled_from([(0.2, 0.7, 0.1), (0.6, 0.3, 0.1), (0.0, 0.5, 0.5)]),
)
def test_random_tournaments_keep_every_invariant(
    config: TournamentConfig, entrants: int, seed: int, busts: tuple[float, float, float]
) -> None:
    seen: list[Tournament] = []

    def after_each_fact(tournament: Tournament, runner: TableRunner) -> None:
        if not seen:
            seen.append(tournament)
        check_invariants(tournament, runner)

    report = simulate(
        entrants,
        seats=config.seats_per_table,
        seed=seed,
        config=config,
        bust_weights=busts,
        on_fact=after_each_fact,
        clock_step_ms=7_000,
    )
    assert report.moves_mid_hand == 0
    assert report.max_spread_after_balance <= config.tolerance
    assert report.eliminations == entrants - 1
    assert report.prizes_paid == report.prize_pool
    check_finished(seen[0])


@settings(max_examples=25, deadline=None)
@given(entrants=st.integers(2, 120), seats=st.integers(2, 10), seed=st.integers(0, 2**31))
def test_places_complete_and_prizes_paid_once(entrants: int, seats: int, seed: int) -> None:
    seen: list[Tournament] = []

    def capture(tournament: Tournament, runner: TableRunner) -> None:
        if not seen:
            seen.append(tournament)
        check_invariants(tournament, runner)

    report = simulate(entrants, seats=seats, seed=seed, config=TournamentConfig(buy_in=1_000), on_fact=capture)
    check_finished(seen[0])
    assert report.prizes_paid == report.prize_pool == entrants * 1_000
    assert len(report.places) == entrants


def test_state_round_trips_and_replays_identically() -> None:
    config = TournamentConfig(seats_per_table=6, buy_in=100, seed=7)
    first = Tournament(config)
    for i in range(40):
        first.register(f"p{i}")
    first.start()
    # Play a few hands, then copy the state through JSON and continue both the same way.
    rng = random.Random(3)

    def play(tournament: Tournament, hands: int, rng: random.Random) -> list[dict[str, object]]:
        trace: list[dict[str, object]] = []
        for _ in range(hands):
            dealing = sorted(t.id for t in tournament.tables.values() if t.in_hand and t.n >= 2)
            if not dealing or tournament.status != "running":
                break
            table = tournament.tables[rng.choice(dealing)]
            players = [e for e in table.seats if e is not None]
            stacks = {e: tournament.entries[e].stack for e in players}
            loser, winner = rng.sample(players, 2)
            stacks[winner] += stacks[loser]
            stacks[loser] = 0
            trace.extend(i.to_dict() for i in tournament.hand_finished(table.id, stacks))
        return trace

    play(first, 10, rng)
    state = json.loads(json.dumps(first.to_state()))
    second = Tournament.from_state(state)
    assert second.to_state() == first.to_state()
    check_invariants(second)
    seed_state = rng.getstate()
    rng_b = random.Random()
    rng_b.setstate(seed_state)
    assert play(first, 25, rng) == play(second, 25, rng_b)
    assert first.to_state() == second.to_state()


def test_a_larger_field_moves_only_between_hands() -> None:
    report = simulate(2_000, seats=9, seed=11)
    assert report.moves_mid_hand == 0
    assert report.max_spread_after_balance <= 1
    assert report.eliminations == 1_999
    assert report.prizes_paid == report.prize_pool


@settings(max_examples=200, deadline=None)
@given(
    pool=st.integers(0, 10**12),
    entries=st.integers(1, 300_000),
    buy_in=st.integers(0, 10**6),
    round_to=st.sampled_from([1, 10, 100, 1_000]),
    paid_fraction=st.floats(0.05, 0.3),
)
def test_payout_tables_sum_exactly_and_never_increase(
    pool: int, entries: int, buy_in: int, round_to: int, paid_fraction: float
) -> None:
    amounts = pay.payout_table(pool, entries, buy_in, PayoutRule(round_to=round_to, paid_fraction=paid_fraction))
    assert sum(amounts) == pool
    assert amounts == sorted(amounts, reverse=True)
    assert len(amounts) <= entries


@settings(max_examples=60, deadline=None)
@given(
    entries=st.integers(1, 20_000),
    buy_in=st.integers(0, 10**6),
    extra=st.integers(0, 10**9),
    round_to=st.sampled_from([1, 10, 100, 1_000]),
    paid_fraction=st.sampled_from([0.1, 0.15, 0.2, 0.333]),
    min_cash_multiple=st.sampled_from([1.0, 1.5, 2.0]),
    first_share=st.sampled_from([None, None, 0.2, 0.25]),
)
def test_payouts_are_exact_and_identical_after_a_serialise_and_replay(
    entries: int,
    buy_in: int,
    extra: int,
    round_to: int,
    paid_fraction: float,
    min_cash_multiple: float,
    first_share: float | None,
) -> None:
    """Issue 10, item 10: the payout curve used floats (``log10``, ``**``), whose last bits may differ on
    another machine, so a journal replayed elsewhere could pay differently. Now the table computed from a
    configuration and a pool is the same after the configuration's JSON round trip (what a replay reads),
    sums exactly to the pool, and never increases."""
    rule = PayoutRule(
        round_to=round_to, paid_fraction=paid_fraction, min_cash_multiple=min_cash_multiple, first_share=first_share
    )
    config = TournamentConfig(buy_in=buy_in, payout=rule)
    replayed = TournamentConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    pool = entries * buy_in + extra
    amounts = pay.payout_table(pool, entries, buy_in, config.payout)
    assert amounts == pay.payout_table(pool, entries, buy_in, replayed.payout)
    assert sum(amounts) == pool
    assert amounts == sorted(amounts, reverse=True)


def test_payouts_use_no_floating_point_library_function(monkeypatch: pytest.MonkeyPatch) -> None:
    """Exact arithmetic only: the payout table never calls the platform's maths library (whose results
    may differ in the last bit between machines); an engine replayed from its state pays the same."""

    def refused(*args: object) -> float:
        raise AssertionError("a floating-point library function in the payouts")

    for name in ("log10", "log", "log2", "exp", "pow"):
        monkeypatch.setattr(pay.math, name, refused)
    for entries in (11, 150, 1_710, 30_000):
        amounts = pay.payout_table(entries * 1_000, entries, 1_000, PayoutRule())
        assert sum(amounts) == entries * 1_000
    engine = Tournament(TournamentConfig(buy_in=1_000, seed=3))
    for player in range(300):
        engine.register(f"p{player}")
    engine.start()
    replayed = Tournament.from_state(json.loads(json.dumps(engine.to_state())))
    replayed._payouts = None  # computed again from the replayed state, not read back
    assert replayed.payouts == engine.payouts
    assert sum(engine.payouts) == 300_000


@settings(max_examples=100, deadline=None)
@given(
    stacks=st.lists(st.integers(1, 10**7), min_size=2, max_size=7),
    prizes=st.lists(st.integers(0, 10**9), min_size=1, max_size=9),
)
def test_deals_sum_exactly(stacks: list[int], prizes: list[int]) -> None:
    prizes = sorted(prizes, reverse=True)
    remaining = sum((prizes + [0] * len(stacks))[: len(stacks)])
    assert sum(pay.icm_deal(stacks, prizes)) == remaining
    assert sum(pay.chip_chop_deal(stacks, prizes)) == remaining


class Director:
    """Random director commands and late entries between hand reports, each applied to the tables."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.late = 0

    def __call__(self, tournament: Tournament, runner: TableRunner) -> None:
        rng = self.rng
        if tournament.status != "running":
            return
        if tournament.clock_paused:
            runner.apply(tournament.resume())
        roll = rng.random()
        live = [e for e in tournament.entries.values() if not e.busted]
        if roll < 0.01:
            runner.apply(tournament.pause())
        elif roll < 0.03 and tournament.registration_open:
            busted = [e.player for e in tournament.entries.values() if e.busted]
            player = rng.choice(busted) if busted and rng.random() < 0.5 else f"late{self.late}"
            self.late += 1
            try:
                _, out = tournament.register(player)
            except TournamentRuleError:
                return  # no re-entry left, or already back in
            runner.apply(out)
        elif roll < 0.05:
            locked = [e for e in live if e.locked]
            if locked:
                tournament.lock_seat(rng.choice(locked).id, False)
            elif tournament.remaining > 4 * tournament.config.seats_per_table:
                tournament.lock_seat(rng.choice(live).id)
        elif roll < 0.06:
            runner.apply(tournament.set_tolerance(rng.choice([1, 2])))
        elif roll < 0.08 and tournament.last_move is not None:
            try:
                runner.apply(tournament.undo("move"))
            except TournamentRuleError:
                return  # that player moved or busted since
        elif roll < 0.10 and tournament.last_bust is not None:
            table = tournament.tables.get(tournament.last_bust["table"])
            givers = [tournament.entries[e] for e in table.seats if e is not None] if table else []
            giver = max(givers, key=lambda e: e.stack, default=None)
            if giver is None or giver.stack < 2:
                return
            try:
                runner.apply(tournament.undo("bust", stack=giver.stack // 2, from_entry=giver.id))
            except TournamentRuleError:
                return  # paid, re-entered, a bounty, or another undo waiting
        elif roll < 0.16 and live:
            # A rebuy (paid now, chips with the table's next report) or, during a break, an add-on; the
            # engine refuses whatever its rules do not allow at this moment.
            entry = rng.choice(live)
            try:
                runner.apply(tournament.addon(entry.id) if rng.random() < 0.5 else tournament.buy_rebuy(entry.id))
            except TournamentRuleError:
                return
        if tournament.remaining <= 4 * tournament.config.seats_per_table:
            for entry in live:
                if entry.locked:
                    tournament.lock_seat(entry.id, False)


chaos_configs = st.builds(
    TournamentConfig,
    seats_per_table=st.integers(2, 10),
    buy_in=st.integers(1, 5_000),
    bounty=st.sampled_from([0, 0, 101]),
    guarantee=st.integers(0, 200_000),
    late_reg_until_level=st.integers(0, 2),
    max_reentries=st.integers(0, 2),
    format=st.sampled_from(["mtt", "mtt", "satellite"]),
    satellite_seat_value=st.integers(2_000, 20_000),
    rebuy_until_level=st.integers(0, 2),
    rebuy_chips=st.sampled_from([0, 5_000]),
    addon_chips=st.sampled_from([0, 8_000]),
    hand_for_hand_margin=st.integers(1, 3),
    payout=st.builds(
        PayoutRule,
        round_to=st.sampled_from([1, 5, 100]),
        # A fixed table may pay more places than a small field has: the pool is still paid out exactly.
        fixed_bp=st.sampled_from([None, None, (5_000, 3_000, 2_000), (4_000, 2_500, 1_500, 1_000, 1_000)]),
    ),
    structure=st.just(
        Structure(
            levels=(Level(10, 20, duration_s=60), Level(20, 40, duration_s=60), Level(40, 80, duration_s=60)),
            breaks=(Break(1, 30), Break(2, 30)),
        )
    ),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(config=chaos_configs, entrants=st.integers(2, 120), seed=st.integers(0, 2**31))
def test_random_tournaments_with_a_busy_director(config: TournamentConfig, entrants: int, seed: int) -> None:
    """Late entries, re-entries, rebuys, add-ons, satellites, PKO, pauses, seat locks, tolerance changes
    and undos in between hands: every invariant after every fact, and at the end every unit of the pool
    (and every bounty, rebuys' included) paid exactly once, places unique and complete."""
    seen: list[Tournament] = []
    director = Director(seed)
    runners: list[TableRunner] = []

    def after_each_fact(tournament: Tournament, runner: TableRunner) -> None:
        if not seen:
            seen.append(tournament)
            runners.append(runner)
        director(tournament, runner)
        check_invariants(tournament, runner)
        # Pool in the wallet = pool in the engine (issue 10, item 1): the money the entries and purchases
        # paid in, with the house's overlay, less what the tables were awarded, is what the engine holds.
        pool_in = (len(tournament.entries) + tournament.rebuys + tournament.addons) * config.buy_in
        bounty_in = (len(tournament.entries) + tournament.rebuys) * config.bounty
        wallet = pool_in + bounty_in + max(0, config.guarantee - pool_in) - runner.awarded - runner.bounties
        assert wallet == tournament.pool_held >= 0

    report = simulate(
        entrants,
        seats=config.seats_per_table,
        seed=seed,
        config=config,
        on_fact=after_each_fact,
        clock_step_ms=5_000,
    )
    tournament, runner = seen[0], runners[0]
    assert report.moves_mid_hand == 0
    check_finished(tournament)
    assert runner.awarded == tournament.prize_pool, "each unit of the pool awarded once"
    paid_in = (len(tournament.entries) + tournament.rebuys) * config.bounty
    assert runner.bounties == tournament.bounties_paid == tournament.bounties_collected == paid_in
    pool_in = (len(tournament.entries) + tournament.rebuys + tournament.addons) * config.buy_in
    assert tournament.prize_pool == max(pool_in, config.guarantee)
