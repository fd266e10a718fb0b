"""The director's manual ordering of ties (TOURNAMENT.md, "What directors ask for"; issue 15): a tie of
players busted in the same hand becomes distinct places, each with its own prize."""

from __future__ import annotations

import pytest
from engine_checks import check_finished, check_invariants
from tablium_event.domain.config import Level, PayoutRule, Structure, TournamentRuleError
from tablium_event.domain.engine import Tournament
from tablium_event.domain.facts import apply
from tablium_event.domain.instructions import AwardPrize, EliminatePlayer, TieOrdered
from test_engine_rules import THREE_PAID, bubble, report
from test_engine_scenarios import bust, of, quiet_hand, started


def tie_in_the_money() -> tuple[Tournament, int, int, int]:
    """4 entrants at one table, 3 paid (2,000 / 1,200 / 800 of 4,000): two equal stacks bust in one hand
    and tie over 3rd-4th, sharing 800. Returns the tournament, the tied entries (lower id first) and the winner."""
    tournament = started(4, seats_per_table=4, payout=THREE_PAID, buy_in=1_000, starting_stack=1_000)
    seated = [e for e in tournament.tables[1].seats if e is not None]
    low, high = sorted(seated[:2])
    out = bust(tournament, 1, [low, high], winner=seated[2])
    assert {e.entry: (e.place, e.place_to) for e in of(EliminatePlayer, out)} == {low: (3, 4), high: (3, 4)}
    assert {a.entry: a.amount for a in of(AwardPrize, out)} == {low: 400, high: 400}
    return tournament, low, high, seated[2]


def test_a_tie_in_the_money_ordered_by_the_director_pays_each_place_its_own_prize() -> None:
    tournament, low, high, _ = tie_in_the_money()
    paid = tournament.prizes_paid
    out = tournament.order_tie([high, low])  # the floor's ruling: ``low`` busted first, so finishes last
    check_invariants(tournament)
    assert of(TieOrdered, out) == [TieOrdered((high, low), 3, 4)]
    assert {e.entry: (e.place, e.place_to) for e in of(EliminatePlayer, out)} == {high: (3, 3), low: (4, 4)}
    assert [(a.entry, a.place, a.amount) for a in of(AwardPrize, out)] == [(high, 3, 800)]
    assert (tournament.entries[high].prize, tournament.entries[low].prize) == (800, 0)
    assert tournament.prizes_paid == paid, "the tie's prizes sum to what it shared: the pool is unchanged"
    assert tournament.decisions()[-1]["kind"] == "tie-ordered"
    # Played to the end, places are unique and complete and the pool is paid exactly.
    winner, second = (e for e in tournament.tables[1].seats if e is not None)
    bust(tournament, 1, [second], winner=winner)
    check_finished(tournament)
    assert sorted((e.place, e.place_to) for e in tournament.entries.values()) == [(1, 1), (2, 2), (3, 3), (4, 4)]


def test_a_hand_for_hand_tie_is_ordered_too() -> None:
    """Busts at two tables in one hand-for-hand hand tie (5th-6th); the director orders them."""
    tournament, (a, b, winner), (c, other, _) = bubble()
    quiet_hand(tournament, 1)
    report(tournament, 1, {a: 0, b: 0, winner: tournament.entries[winner].stack + 3_000})
    report(tournament, 2, {c: 0, other: tournament.entries[other].stack + 1_000})
    assert (tournament.entries[a].place, tournament.entries[a].place_to) == (5, 6)
    out = tournament.order_tie([a, c])
    assert {e.entry: e.place for e in of(EliminatePlayer, out)} == {a: 5, c: 6}
    assert not of(AwardPrize, out), "out of the money: places only"
    check_invariants(tournament)


def test_the_ordering_is_a_fact_that_replays_exactly() -> None:
    tournament, low, high, _ = tie_in_the_money()
    copy = Tournament.from_state(tournament.to_state())
    live = apply(tournament, "order_tie", {"now_ms": 0, "entries": [low, high]})
    replayed = apply(copy, "order_tie", {"now_ms": 0, "entries": [low, high]})
    assert live == replayed
    assert tournament.to_state() == copy.to_state()
    assert Tournament.from_state(tournament.to_state()).entries[low].place == 3


def test_a_tie_waiting_for_registration_to_close_is_split_in_the_directors_order() -> None:
    structure = Structure(levels=(Level(10, 20, duration_s=60), Level(20, 40, duration_s=60)))
    tournament = started(9, late_reg_until_level=1, structure=structure, starting_stack=1_000)
    seated = [e for e in tournament.tables[1].seats if e is not None]
    first, second = sorted(seated[:2])
    bust(tournament, 1, [first, second], winner=seated[2])
    assert tournament.unplaced == [[first, second]]
    assert tournament.order_tie([first, second]) == []
    assert tournament.unplaced == [[second], [first]], "worst first"
    out = tournament.tick(60_000)
    assert {e.entry: (e.place, e.place_to) for e in of(EliminatePlayer, out)} == {second: (9, 9), first: (8, 8)}


@pytest.mark.parametrize(
    "order",
    [
        "one",  # a single entry is no tie
        "mixed",  # a tied entry and the winner
        "twice",  # the same entry twice
        "unknown",  # no such entry
        "live",  # two live players
    ],
)
def test_what_is_not_a_tie_is_refused(order: str) -> None:
    tournament, low, _, winner = tie_in_the_money()
    live = [e for e in tournament.tables[1].seats if e is not None]
    entries = {
        "one": [low],
        "mixed": [low, winner],
        "twice": [low, low],
        "unknown": [low, 99],
        "live": live,
    }[order]
    state = tournament.to_state()
    with pytest.raises(TournamentRuleError):
        tournament.order_tie(entries)
    assert tournament.to_state() == state, "a refused ruling changes nothing"


def test_a_tie_of_three_must_be_ordered_whole_and_a_cancelled_event_has_none() -> None:
    tournament = started(5, seats_per_table=5, payout=PayoutRule(fixed_bp=(7_000, 3_000)), starting_stack=1_000)
    seated = [e for e in tournament.tables[1].seats if e is not None]
    trio = sorted(seated[:3])
    bust(tournament, 1, trio, winner=seated[3])
    assert {tournament.entries[e].place for e in trio} == {3}
    with pytest.raises(TournamentRuleError, match="not exactly"):
        tournament.order_tie(trio[:2])
    tournament.order_tie([trio[2], trio[0], trio[1]])
    assert [tournament.entries[e].place for e in trio] == [4, 5, 3]
    with pytest.raises(TournamentRuleError, match="not exactly"):
        tournament.order_tie(trio)  # ordered already: no tie left
    tournament.cancel()
    with pytest.raises(TournamentRuleError, match="running or finished"):
        tournament.order_tie(trio)
