"""Rules the engine got wrong (issue 15), each an exact scenario against TOURNAMENT.md."""

from __future__ import annotations

import pytest
from engine_checks import check_invariants
from tablium_event.domain.config import Break, Level, PayoutRule, Structure
from tablium_event.domain.engine import Tournament
from tablium_event.domain.instructions import EliminatePlayer, EndBreak, HandForHand, StartBreak
from test_engine_scenarios import of, quiet_hand, stacks_of, started

THREE_PAID = PayoutRule(fixed_bp=(5_000, 3_000, 2_000))


def report(tournament: Tournament, table_id: int, stacks: dict[int, int]) -> list:
    """A hand at ``table_id`` ending with ``stacks`` (those not named keep theirs)."""
    out = tournament.hand_finished(table_id, {**stacks_of(tournament, table_id), **stacks})
    check_invariants(tournament)
    return out


def places(out: list) -> dict[int, tuple[int, int]]:
    return {e.entry: (e.place, e.place_to) for e in of(EliminatePlayer, out) if e.place}


def bubble(**config: object) -> tuple[Tournament, list[int], list[int]]:
    """8 entrants at two tables of 4, 3 paid, hand-for-hand from 6 left (margin 3): one bust at each
    table turns it on. Returns the tournament and the players left at tables 1 and 2."""
    tournament = started(
        8, seats_per_table=4, payout=THREE_PAID, buy_in=1_000, starting_stack=1_000, hand_for_hand_margin=3, **config
    )
    one = [e for e in tournament.tables[1].seats if e is not None]
    two = [e for e in tournament.tables[2].seats if e is not None]
    # Table 1: one bust; the hand leaves a with 300 and b with 2,700. Table 2: one bust, 1,000 each after.
    report(tournament, 1, {one[3]: 0, one[0]: 300, one[1]: 2_700})
    out = report(tournament, 2, {two[3]: 0, two[0]: 1_000, two[1]: 2_000})
    assert of(HandForHand, out) == [HandForHand(True)]
    return tournament, one[:3], two[:3]


def test_hand_for_hand_busts_combine_same_table_by_stack_and_tables_by_rank() -> None:
    """TOURNAMENT.md: table A busts a 300 and b 3,700 (here 2,700), table B busts c 1,000, places 4-6
    left: a and c tie over 5th-6th, b is 4th. (The engine tied all three over 4th-6th.)"""
    tournament, (a, b, winner), (c, other, _) = bubble()
    quiet_hand(tournament, 1)  # the hand in progress when hand-for-hand began
    assert tournament.h4h_round, "every table waits, then each plays one hand"
    report(tournament, 1, {a: 0, b: 0, winner: tournament.entries[winner].stack + 3_000})
    out = report(tournament, 2, {c: 0, other: tournament.entries[other].stack + 1_000})
    assert places(out) == {a: (5, 6), c: (5, 6), b: (4, 4)}


@pytest.mark.parametrize("stop", ["break", "pause"])
def test_the_first_hand_after_a_break_or_a_pause_is_hand_for_hand(stop: str) -> None:
    """TOURNAMENT.md: "Every hand dealt while hand-for-hand is on counts, including the first hand after a
    break or a pause." Busts at two tables in that hand tie over 5th-6th (the engine placed them in report
    order: 6th, then 5th)."""
    structure = Structure(levels=(Level(10, 20, duration_s=60), Level(20, 40, duration_s=60)), breaks=(Break(1, 30),))
    tournament, (a, _, winner), (c, other, _) = bubble(structure=structure)
    if stop == "break":
        tournament.tick(60_000)  # the break falls due while the tables wait for hand-for-hand
        out = quiet_hand(tournament, 1)
        assert of(StartBreak, out)
        out = tournament.tick(90_000)
        assert of(EndBreak, out)
    else:
        tournament.pause()
        quiet_hand(tournament, 1)
        tournament.resume()
    assert all(table.in_hand for table in tournament.tables.values()), "every table dealt together"
    out = report(tournament, 1, {a: 0, winner: tournament.entries[winner].stack + 300})
    assert not places(out), "placed only when every table has played the hand"
    out = report(tournament, 2, {c: 0, other: tournament.entries[other].stack + 1_000})
    assert places(out) == {a: (5, 6), c: (5, 6)}
