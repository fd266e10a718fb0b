"""The TDA cases of TOURNAMENT.md, one by one, plus formats, money and the director's tools."""

from __future__ import annotations

import json
from typing import Any

import pytest
from engine_checks import check_finished, check_invariants
from tablium_event.domain import payouts as pay
from tablium_event.domain.config import (
    Break,
    Level,
    PayoutRule,
    Price,
    Structure,
    TournamentConfig,
    TournamentRuleError,
)
from tablium_event.domain.engine import Entry, Tournament
from tablium_event.domain.instructions import (
    AwardPrize,
    BreakTable,
    EliminatePlayer,
    EliminationUndone,
    EndBreak,
    HandForHand,
    HoldTable,
    Instruction,
    MovePlayer,
    NewLevel,
    ResumeTable,
    SetStack,
    StartBreak,
    TournamentFinished,
)
from tablium_event.domain.simulator import simulate


def started(entrants: int, **config: Any) -> Tournament:
    tournament = Tournament(TournamentConfig(**{"buy_in": 100, "seed": 5, **config}))
    for i in range(entrants):
        tournament.register(f"p{i + 1}")
    tournament.start()
    return tournament


def stacks_of(tournament: Tournament, table_id: int) -> dict[int, int]:
    return {e: tournament.entries[e].stack for e in tournament.tables[table_id].seats if e is not None}


def bust(tournament: Tournament, table_id: int, losers: list[int], winner: int | None = None) -> list[Instruction]:
    """Report a hand at ``table_id`` in which ``losers`` lost everything to ``winner``."""
    stacks = stacks_of(tournament, table_id)
    winner = winner if winner is not None else next(e for e in stacks if e not in losers)
    for loser in losers:
        stacks[winner] += stacks[loser]
        stacks[loser] = 0
    out = tournament.hand_finished(table_id, stacks)
    check_invariants(tournament)
    return out


def quiet_hand(tournament: Tournament, table_id: int) -> list[Instruction]:
    out = tournament.hand_finished(table_id, stacks_of(tournament, table_id))
    check_invariants(tournament)
    return out


def first_free_after(table: Any, seat: int) -> int:
    size = len(table.seats)
    return next((seat + step) % size for step in range(1, size + 1) if table.seats[(seat + step) % size] is None)


def is_next_big_blind(table: Any, seat: int) -> bool:
    """Would a player in ``seat`` post the big blind in the hand after the one at ``table``?"""
    size = len(table.seats)
    for step in range(1, size + 1):
        candidate = (table.bb + step) % size
        if candidate == seat:
            return True
        if table.seats[candidate] is not None:
            return False
    return False


def of(kind: type[Instruction], out: list[Instruction]) -> list[Any]:
    return [i for i in out if isinstance(i, kind)]


def test_big_blind_next_moves_to_the_worst_position() -> None:
    tournament = started(27)  # three tables of 9
    short = tournament.tables[1]
    long_ids = [2, 3]
    due = {t: tournament.tables[t].seats[tournament.tables[t].next_occupied(tournament.tables[t].bb)] for t in long_ids}
    # Two busts at table 1 make it 7 against 9 and 9: one player must come from a long table.
    out = bust(tournament, 1, [e for e in short.seats if e is not None][:2])
    planned = [row for row in tournament.log if row[2] == "balance"]
    assert len(planned) == 1, "one move restores the balance"
    entry, source, _, dest, seat = planned[0][3:8]
    assert dest == 1
    assert source in long_ids
    assert entry == due[source], "the player due the big blind next at the long table moves [11A]"
    assert not of(MovePlayer, out), "the long table is mid-hand: the move waits"
    # The worst position: the first open seat after the big blind of the hand table 1 now plays.
    assert seat == first_free_after(short, short.bb)
    next_bb = is_next_big_blind(short, seat)
    [move] = of(MovePlayer, quiet_hand(tournament, source))
    assert (move.entry, move.to_table, move.to_seat) == (entry, 1, seat)
    quiet_hand(tournament, 1)
    assert (short.bb == seat) == next_bb


def seat_after(table: Any, seat: int, step: int) -> int:
    return (seat + step) % len(table.seats)


def test_three_short_table_stops_at_once_when_its_next_big_blind_passes_an_incoming_seat() -> None:
    """TOURNAMENT.md [11D]: "Play at a table 3 or more players short of the largest table stops once its
    blinds are affected, until it is balanced." Here the seats kept for the incoming players lie where the
    next hand's big blind would go: dealing it would change its blinds, so the table stops now."""
    tournament = started(27)
    short = tournament.tables[1]
    next_bb = short.next_occupied(short.bb)
    # The three players from the big blind on bust: the seats kept for the movers come right after it.
    losers = [short.seats[seat_after(short, short.bb, step)] or 0 for step in (0, 1, 2)]
    out = bust(tournament, 1, losers)
    assert next_bb in short.reserved, "the next big blind's seat is kept for an incoming player"
    # Table 1 has 6 players while the others have 9 (mid-hand): it holds until players arrive.
    assert [h.table for h in of(HoldTable, out)] == [1]
    later = quiet_hand(tournament, 2) + quiet_hand(tournament, 3)
    assert of(MovePlayer, later)
    assert 1 in [r.table for r in of(ResumeTable, later)]


def test_three_short_table_deals_on_while_its_blinds_are_not_affected() -> None:
    """TOURNAMENT.md [11D]: "Play at a table 3 or more players short of the largest table stops once its
    blinds are affected, until it is balanced." The short table is balanced at once (players are on their
    way) and keeps dealing while each hand has the very blinds it would have with them seated; it stops
    before the first hand whose big blind would pass a seat kept for them, and no other table stops."""
    tournament = started(27)
    short = tournament.tables[1]
    next_bb = short.next_occupied(short.bb)
    # Bust the three players two to four seats after the next big blind.
    losers = [short.seats[seat_after(short, next_bb, step)] or 0 for step in (2, 3, 4)]
    out = bust(tournament, 1, losers)
    assert sorted(short.reserved) == sorted(seat_after(short, next_bb, step) for step in (2, 3))
    assert not of(HoldTable, out), "the next hand's blinds are the same with the movers seated"
    assert short.in_hand
    assert short.bb == next_bb
    out = quiet_hand(tournament, 1)
    assert not of(HoldTable, out), "nor the hand after: its big blind is the next seat, taken"
    assert short.bb == seat_after(short, next_bb, 1)
    out = quiet_hand(tournament, 1)
    assert of(HoldTable, out) == [HoldTable(1, "3 short: waiting for players [11D]")], (
        "the next big blind would pass the seats kept for the movers: blinds affected, play stops"
    )
    assert tournament.tables[2].in_hand, "only the short table stops"
    assert tournament.tables[3].in_hand
    later = quiet_hand(tournament, 2)
    [move] = of(MovePlayer, later)
    assert (move.to_table, move.to_seat) == (1, seat_after(short, next_bb, 2)), "the worst seat [11A]"
    assert ResumeTable(1) in later, "no longer 3 short: it deals again"


def test_simultaneous_busts_are_ranked_by_starting_stack_and_ties_split() -> None:
    tournament = started(
        6, seats_per_table=6, payout=PayoutRule(fixed_bp=(5_000, 3_000, 2_000)), buy_in=1_000, starting_stack=1_000
    )
    table = tournament.tables[1]
    players = [e for e in table.seats if e is not None]
    a, b, c, d, winner = players[:5]
    # a starts the next hand bigger than b; c and d equal.
    stacks = stacks_of(tournament, 1)
    stacks[a] += 300
    stacks[b] -= 300
    tournament.hand_finished(1, stacks)
    out = bust(tournament, 1, [a, b], winner)
    places = {e.entry: e.place for e in of(EliminatePlayer, out)}
    assert places == {b: 6, a: 5}
    out = bust(tournament, 1, [c, d], winner)
    elim = {e.entry: (e.place, e.place_to) for e in of(EliminatePlayer, out)}
    assert elim == {c: (3, 4), d: (3, 4)}
    prizes = {p.entry: p.amount for p in of(AwardPrize, out)}
    assert prizes == {c: 600, d: 600}, "3rd + 4th place (1,200 + 0) shared"


def test_hand_for_hand_at_the_bubble_ties_busts_across_tables() -> None:
    tournament = started(
        12, seats_per_table=4, payout=PayoutRule(fixed_bp=(3_000, 2_500, 2_000, 1_500, 1_000)), buy_in=1_000
    )
    # Bust down to 7 players (5 paid, margin 1: hand-for-hand from 6).
    while tournament.remaining > 7:
        table = max(tournament.tables.values(), key=lambda t: (t.in_hand, t.n))
        bust(tournament, table.id, [next(e for e in table.seats if e is not None)])
    assert not tournament.hand_for_hand
    table = max(tournament.tables.values(), key=lambda t: (t.in_hand, t.n))
    out = bust(tournament, table.id, [next(e for e in table.seats if e is not None)])
    assert of(HandForHand, out) == [HandForHand(True)]
    # Every table finishes its hand and waits, then each plays one hand.
    for t in list(tournament.tables.values()):
        if t.in_hand:
            quiet_hand(tournament, t.id)
    assert tournament.h4h_round
    assert all(t.in_hand for t in tournament.tables.values())
    ids = sorted(tournament.tables)
    assert len(ids) == 2
    first_bust = next(e for e in tournament.tables[ids[0]].seats if e is not None)
    second_bust = next(e for e in tournament.tables[ids[1]].seats if e is not None)
    out1 = bust(tournament, ids[0], [first_bust])
    assert all(e.place == 0 for e in of(EliminatePlayer, out1)), "placed only when every table has played"
    out2 = bust(tournament, ids[1], [second_bust])
    placed = {e.entry: (e.place, e.place_to) for e in of(EliminatePlayer, out2) if e.place}
    assert placed == {first_bust: (5, 6), second_bust: (5, 6)}
    prizes = {p.entry: p.amount for p in of(AwardPrize, out2)}
    assert prizes == {first_bust: 600, second_bust: 600}, "5th place (1,200) + 6th (0) shared"
    assert HandForHand(False) in out2


def test_final_table_merge_at_nine() -> None:
    tournament = started(10)  # 5 + 5
    table = tournament.tables[1]
    out = bust(tournament, 1, [next(e for e in table.seats if e is not None)])
    # Nine left: table 2 (highest number) breaks into table 1, after its current hand.
    assert 2 in tournament.tables
    assert tournament.tables[2].breaking
    out = quiet_hand(tournament, 2)
    assert len(of(MovePlayer, out)) == 5
    assert of(BreakTable, out) == [BreakTable(2)]
    assert list(tournament.tables) == [1]
    assert tournament.tables[1].n == 9


def test_six_max_final_table_at_six() -> None:
    tournament = started(7, seats_per_table=6)  # 4 + 3
    out = bust(tournament, 2, [next(e for e in tournament.tables[2].seats if e is not None)])
    assert of(MovePlayer, out)
    assert of(BreakTable, out) == [BreakTable(2)]
    assert tournament.tables[1].n == 6


def test_dead_button_after_a_bust_in_the_big_blind() -> None:
    tournament = started(6, seats_per_table=9)
    table = tournament.tables[1]
    bb_player = table.seats[table.bb]
    old_bb, old_sb = table.bb, table.sb
    assert bb_player is not None
    bust(tournament, 1, [bb_player])
    # The big blind moves on to the next player; the small blind is dead (the empty seat); the
    # button goes to the previous small blind's seat [32].
    assert table.bb == table.next_occupied(old_bb)
    assert table.sb == old_bb
    assert table.seats[table.sb] is None
    assert table.button == old_sb


def test_heads_up_small_blind_has_the_button() -> None:
    tournament = started(3, seats_per_table=9)
    table = tournament.tables[1]
    loser = next(e for e in table.seats if e is not None and e != table.seats[table.bb])
    bust(tournament, 1, [loser])
    assert table.n == 2
    assert table.button == table.sb != table.bb


def test_the_mover_is_the_least_moved_candidate_over_every_longest_table() -> None:
    """TOURNAMENT.md (balancing): "never bouncing the same player twice when another choice exists" and
    [11A] "Ties among candidates: least moved first, then a fixed procedure [11C]". Twelve tables of 9; at
    every long table but one the player due the big blind has moved before; the one who never moved sits
    at the table the seeded order looks at last. Only that player may be moved."""
    tournament = started(108)  # 12 tables of 9
    long_tables = sorted((t for t in tournament.tables.values() if t.id != 1), key=lambda t: t.rank)
    target_table = long_tables[0]  # the lowest seeded rank: looked at last
    due = {t.id: t.seats[t.next_occupied(t.bb)] for t in long_tables}
    state = json.loads(json.dumps(tournament.to_state()))
    moves_at = Entry.FIELDS.index("moves")
    for row in state["entries"]:
        if row[0] in due.values() and row[0] != due[target_table.id]:
            row[moves_at] = 1
    tournament = Tournament.from_state(state)
    check_invariants(tournament)
    bust(tournament, 1, [e for e in tournament.tables[1].seats if e is not None][:2])
    [row] = [row for row in tournament.log if row[2] == "balance"]
    assert (row[3], row[4]) == (due[target_table.id], target_table.id), "the never-moved player moves"
    assert row[11] == 0, "moved 0 times before"


def test_seat_lock_exempts_from_moves() -> None:
    tournament = started(18)
    long = tournament.tables[2]
    due = long.seats[long.next_occupied(long.bb)]
    assert due is not None
    tournament.lock_seat(due)
    bust(tournament, 1, [e for e in tournament.tables[1].seats if e is not None][:2])
    [row] = [row for row in tournament.log if row[2] == "balance"]
    assert row[3] != due


def chips_in_play(tournament: Tournament) -> int:
    return sum(e.stack for e in tournament.entries.values() if not e.busted)


def test_undo_the_last_bust_takes_the_chips_back_between_hands() -> None:
    tournament = started(27)
    total = chips_in_play(tournament)
    victim, winner = [e for e in tournament.tables[1].seats if e is not None][:2]
    bust(tournament, 1, [victim], winner)
    assert tournament.entries[victim].place == 27
    with pytest.raises(TournamentRuleError):
        tournament.undo("bust", stack=500)  # chips are never created: they must come from someone
    with pytest.raises(TournamentRuleError):
        tournament.undo("bust", stack=500, from_entry=tournament.tables[2].seats[0] or 0)
    assert tournament.undo("bust", stack=3_000, from_entry=winner) == []
    # Table 1 is mid-hand: nothing changes until it reports; meanwhile a bust at table 2 takes place 26.
    other = next(e for e in tournament.tables[2].seats if e is not None)
    bust(tournament, 2, [other])
    assert tournament.entries[other].place == 26
    with pytest.raises(TournamentRuleError):
        tournament.undo("bust", stack=1, from_entry=winner)
    winner_stack = tournament.entries[winner].stack
    out = quiet_hand(tournament, 1)
    assert not tournament.entries[victim].busted
    assert tournament.entries[victim].stack == 3_000
    assert tournament.entries[winner].stack == winner_stack - 3_000
    assert chips_in_play(tournament) == total, "no chip created or lost"
    assert tournament.entries[other].place == 27, "the later bust-out now finished last"
    assert [(e.entry, e.place) for e in of(EliminatePlayer, out)] == [(other, 27)]
    assert of(EliminationUndone, out) == [EliminationUndone(victim, tournament.entries[victim].player, 1, 27, 27)]
    assert out.index(of(EliminationUndone, out)[0]) < out.index(of(EliminatePlayer, out)[0]), "the undo first"
    assert {s.entry: s.stack for s in of(SetStack, out)} == {winner: winner_stack - 3_000}
    assert tournament.placed == 1
    assert tournament.remaining == 26
    assert any(row[2] == "undo-bust" for row in tournament.log)


def test_an_undo_waiting_for_a_hand_is_dropped_when_the_chips_are_gone() -> None:
    tournament = started(18)
    victim, winner, third = [e for e in tournament.tables[1].seats if e is not None][:3]
    bust(tournament, 1, [victim], winner)
    tournament.undo("bust", stack=500, from_entry=winner)
    bust(tournament, 1, [winner], third)  # the player who had to give the chips back busts first
    assert tournament.entries[victim].busted
    assert tournament.log[-1][2] != "undo-bust"
    assert any(row[2] == "undo-dropped" for row in tournament.log)


def test_undo_the_last_move() -> None:
    tournament = started(18)
    bust(tournament, 1, [e for e in tournament.tables[1].seats if e is not None][:2])
    quiet_hand(tournament, 2)
    move = tournament.last_move
    assert move is not None
    tournament.undo("move")
    out = quiet_hand(tournament, move["to_table"])
    [back] = of(MovePlayer, out)
    assert (back.to_table, back.to_seat) == (move["from_table"], move["from_seat"])


def test_synchronized_break_and_levels() -> None:
    structure = Structure(levels=(Level(10, 20, duration_s=60), Level(20, 40, duration_s=60)), breaks=(Break(1, 30),))
    tournament = started(18, structure=structure)
    assert not tournament.tick(59_000)
    out = tournament.tick(60_000)
    assert not of(StartBreak, out), "the break waits for every table to finish its hand"
    out = quiet_hand(tournament, 1)
    assert of(HoldTable, out)
    assert not of(StartBreak, out)
    out = quiet_hand(tournament, 2)
    assert of(StartBreak, out) == [StartBreak(1, 30)]
    out = tournament.tick(90_000)
    assert of(EndBreak, out)
    assert of(NewLevel, out)[0].big_blind == 40
    assert {r.table for r in of(ResumeTable, out)} == {1, 2}
    tournament.pause()
    assert tournament.tick(200_000) == []
    assert tournament.level_elapsed_ms == 0
    tournament.resume()


def test_late_registration_reentry_and_places_after_close() -> None:
    structure = Structure(levels=(Level(10, 20, duration_s=60), Level(20, 40, duration_s=60)))
    tournament = started(9, late_reg_until_level=1, max_reentries=1, structure=structure)
    victim = next(e for e in tournament.tables[1].seats if e is not None)
    out = bust(tournament, 1, [victim])
    assert of(EliminatePlayer, out)[0].place == 0, "the place waits until the field is final"
    entry, out = tournament.register(tournament.entries[victim].player)
    assert tournament.entries[entry].number == 2
    assert tournament.entries[entry].table
    with pytest.raises(TournamentRuleError):
        tournament.register(tournament.entries[victim].player)
    _entry2, _ = tournament.register("late")
    check_invariants(tournament)
    out = tournament.tick(60_000)
    assert not tournament.registration_open
    assert [(e.entry, e.place) for e in of(EliminatePlayer, out)] == [(victim, 11)]
    with pytest.raises(TournamentRuleError):
        tournament.register("too-late")


def test_sit_and_go_starts_when_full() -> None:
    tournament = Tournament(TournamentConfig(format="sng", seats_per_table=6, buy_in=10))
    for i in range(5):
        _, out = tournament.register(f"p{i}")
        assert not out
    _, out = tournament.register("p5")
    assert tournament.status == "running"
    assert len(tournament.tables) == 1


def test_satellite_ends_when_players_left_equal_seats() -> None:
    tournament = started(20, format="satellite", satellite_seat_value=500, buy_in=100)
    assert tournament.prizes.seats_awarded() == 4
    while tournament.status == "running":
        table = next(t for t in tournament.tables.values() if t.in_hand and t.n >= 2)
        bust(tournament, table.id, [next(e for e in table.seats if e is not None)])
        for t in list(tournament.tables.values()):
            if t.in_hand and tournament.hand_for_hand and t.id != table.id:
                quiet_hand(tournament, t.id)
    winners = [e for e in tournament.entries.values() if e.place == 1]
    assert len(winners) == 4
    assert all(e.prize == 500 for e in winners)
    check_finished(tournament)


def test_a_satellite_pool_may_not_grow_into_places_already_decided() -> None:
    """Found by the busy-director property: a satellite's bust at an unpaid place, then rebuys that grew
    the pool by a seat and a cash remainder: the busted place became a paid one it was never paid for
    (158,000 of a 158,108 pool awarded). A purchase or entry that would pay a decided place is refused."""
    tournament = started(20, format="satellite", satellite_seat_value=500, buy_in=100, seats_per_table=10)
    while tournament.remaining > 6:
        table = next(t for t in tournament.tables.values() if t.in_hand and t.n >= 2)
        bust(tournament, table.id, [next(e for e in table.seats if e is not None)])
        for t in list(tournament.tables.values()):
            if t.in_hand and tournament.hand_for_hand and t.id != table.id:
                quiet_hand(tournament, t.id)
    assert tournament.status == "running"
    assert tournament.paid_places() == 4
    assert len(tournament.entries) - tournament.placed + 1 == 7
    assert not tournament.prizes.would_pay_a_decided_place(1_000), "six seats, no remainder: places 1-6 only"
    assert tournament.prizes.would_pay_a_decided_place(1_100), "a 100 remainder for place 7, decided with nothing"


def test_rebuys_and_addons_grow_the_pool() -> None:
    structure = Structure(levels=(Level(10, 20, duration_s=60), Level(20, 40, duration_s=60)), breaks=(Break(1, 30),))
    tournament = started(
        6, seats_per_table=6, rebuy_until_level=1, rebuy_chips=1_000, addon_chips=2_000, structure=structure
    )
    table = tournament.tables[1]
    loser, winner = [e for e in table.seats if e is not None][:2]
    stacks = stacks_of(tournament, 1)
    stacks[winner] += stacks[loser]
    stacks[loser] = 0
    tournament.hand_finished(1, stacks, rebuys=[loser])
    assert tournament.entries[loser].stack == 1_000
    assert not tournament.entries[loser].busted
    assert tournament.prize_pool == 700
    tournament.tick(60_000)
    quiet_hand(tournament, 1)
    assert tournament.break_ends_ms is not None
    tournament.addon(winner)
    assert tournament.prize_pool == 800
    with pytest.raises(TournamentRuleError):
        tournament.addon(winner)


def test_a_rebuy_bought_during_a_hand_arrives_with_its_report_and_saves_a_bust() -> None:
    structure = Structure(levels=(Level(10, 20, duration_s=60), Level(20, 40, duration_s=60)))
    tournament = started(6, seats_per_table=6, rebuy_until_level=1, rebuy_chips=1_000, structure=structure)
    loser, winner = [e for e in tournament.tables[1].seats if e is not None][:2]
    assert tournament.buy_rebuy(loser) == [], "no chips mid-hand"
    assert (tournament.entries[loser].stack, tournament.prize_pool) == (10_000, 700)
    with pytest.raises(TournamentRuleError):
        tournament.buy_rebuy(loser)  # one at a time: the next once these chips are in play
    tournament = Tournament.from_state(json.loads(json.dumps(tournament.to_state())))
    out = bust(tournament, 1, [loser], winner)
    assert SetStack(loser, 1, tournament.entries[loser].seat, 1_000, "rebuy") in out
    assert not tournament.entries[loser].busted
    assert not any(isinstance(i, EliminatePlayer) for i in out)
    assert (tournament.rebuys, tournament.pending_rebuys) == (1, [])
    with pytest.raises(TournamentRuleError):
        tournament.buy_rebuy(winner)  # above the starting stack
    tournament.tick(60_000)
    quiet_hand(tournament, 1)
    assert tournament.level == 2
    with pytest.raises(TournamentRuleError):
        tournament.buy_rebuy(loser)  # the rebuy period is over


def test_pko_bounties_are_paid_exactly() -> None:
    tournament = started(4, seats_per_table=4, bounty=101)
    table = tournament.tables[1]
    a, b, c, d = [e for e in table.seats if e is not None]
    stacks = stacks_of(tournament, 1)
    stacks[a] += stacks[b]
    stacks[b] = 0
    out = tournament.hand_finished(1, stacks, knockouts={b: [a]})
    [cash] = [p for p in of(AwardPrize, out) if p.prize == "bounty"]
    assert (cash.entry, cash.amount) == (a, 50)
    assert tournament.entries[a].bounty == 152
    for loser in (c, d):
        stacks = stacks_of(tournament, 1)
        stacks[a] += stacks[loser]
        stacks[loser] = 0
        out = tournament.hand_finished(1, stacks, knockouts={loser: [a]})
    assert of(TournamentFinished, out)
    assert tournament.bounties_paid == 4 * 101


def test_a_pko_rebuy_adds_its_bounty_part_to_the_buyers_bounty() -> None:
    """TOURNAMENT.md: "Progressive knockout (PKO) bounties: a share of the buy-in funds bounties" and
    "rebuys and add-ons (keep the seat)". A rebuy is a new buy-in for the same seat: split like the
    entry's (prize pool, bounty, fee), its bounty part added to the buyer's own bounty; an add-on buys
    chips only. Prize pool and bounties still pay out every unit paid in."""
    structure = Structure(levels=(Level(10, 20, duration_s=60), Level(20, 40, duration_s=60)), breaks=(Break(1, 30),))
    config = {"bounty": 101, "fee": 7, "rebuy_until_level": 1, "rebuy_chips": 1_000, "addon_chips": 500}
    tournament = started(4, seats_per_table=4, structure=structure, **config)
    assert tournament.config.price("entry") == tournament.config.price("rebuy") == Price(100, 101, 7)
    assert tournament.config.price("rebuy").total == 208
    assert tournament.config.price("addon") == Price(100, 0, 0)
    a, b, c, d = [e for e in tournament.tables[1].seats if e is not None]
    stacks = stacks_of(tournament, 1)
    stacks[a] += stacks[b]
    stacks[b] = 0
    tournament.hand_finished(1, stacks, rebuys=[b])  # b busts and rebuys in the same report
    assert tournament.entries[b].bounty == 202, "the rebuy's bounty part joins the entry's"
    tournament.buy_rebuy(b)  # and once more, bought during the next hand
    assert tournament.entries[b].bounty == 303
    assert (tournament.prize_pool, tournament.bounties_collected) == (600, 6 * 101)
    tournament.tick(60_000)
    quiet_hand(tournament, 1)
    tournament.addon(c)
    assert (tournament.entries[c].bounty, tournament.prize_pool) == (101, 700), "an add-on carries no bounty"
    tournament.tick(90_000)
    hunter = a
    for loser in (b, c, d):
        stacks = stacks_of(tournament, 1)
        stacks[hunter] += stacks[loser]
        stacks[loser] = 0
        out = tournament.hand_finished(1, stacks, knockouts={loser: [hunter]})
    assert of(TournamentFinished, out)
    assert [(p.entry, p.amount) for p in of(AwardPrize, out) if p.prize == "bounty"][-1][0] == hunter
    assert tournament.bounties_paid == tournament.bounties_collected == 6 * 101, "every bounty unit paid once"
    check_finished(tournament)
    restored = Tournament.from_state(json.loads(json.dumps(tournament.to_state())))
    assert restored.bounties_collected == 6 * 101


def test_a_state_saved_before_rebuy_bounties_restores_with_none() -> None:
    tournament = started(4, seats_per_table=4, bounty=50, rebuy_until_level=1, rebuy_chips=1_000)
    state = json.loads(json.dumps(tournament.to_state()))
    del state["rebuy_bounties"]
    restored = Tournament.from_state(state)
    assert restored.bounties_collected == 4 * 50
    assert restored.to_state()["rebuy_bounties"] == 0


def addon_event(**config: Any) -> Tournament:
    levels = (Level(10, 20, duration_s=60), Level(20, 40, duration_s=60), Level(40, 80, duration_s=60))
    structure = Structure(levels=levels, breaks=(Break(1, 30), Break(2, 30), Break(3, 30)))
    return started(6, seats_per_table=6, structure=structure, rebuy_chips=1_000, addon_chips=2_000, **config)


def through_break(tournament: Tournament, now_ms: int) -> None:
    """The clock reaches ``now_ms`` (a level's end), the table finishes its hand and the break starts."""
    tournament.tick(now_ms)
    quiet_hand(tournament, 1)
    assert tournament.break_ends_ms is not None


def test_an_addon_only_at_the_break_after_the_rebuy_period() -> None:
    """TOURNAMENT.md: "rebuys and add-ons (keep the seat)"; config: one add-on per entry, at the first
    break after the rebuy period. Rebuys until level 2, breaks after levels 1, 2 and 3: the add-on is
    refused at the first break, taken once per entry at the second, refused at the third."""
    tournament = addon_event(rebuy_until_level=2)
    assert tournament.config.addon_level() == 2
    someone, other = [e for e in tournament.tables[1].seats if e is not None][:2]
    with pytest.raises(TournamentRuleError, match="only during the break after level 2"):
        tournament.addon(someone)  # no break at all
    through_break(tournament, 60_000)
    with pytest.raises(TournamentRuleError, match="only during the break after level 2"):
        tournament.addon(someone)  # a break, but inside the rebuy period
    tournament.tick(90_000)  # the break ends: level 2
    assert tournament.level == 2
    through_break(tournament, 150_000)
    assert tournament.level == 2
    [stack] = of(SetStack, tournament.addon(someone))
    assert stack.stack == 12_000
    with pytest.raises(TournamentRuleError, match="already took its add-on"):
        tournament.addon(someone)  # once per entry
    tournament.tick(180_000)
    through_break(tournament, 240_000)
    with pytest.raises(TournamentRuleError, match="only during the break after level 2"):
        tournament.addon(other)  # the add-on break is over
    assert tournament.addons == 1


def test_no_addon_without_a_break_after_the_rebuy_period() -> None:
    """A structure whose breaks all come inside the rebuy period has no add-on break: refused, clearly."""
    tournament = addon_event(rebuy_until_level=4)
    assert tournament.config.addon_level() is None
    through_break(tournament, 60_000)
    with pytest.raises(TournamentRuleError, match="no add-on"):
        tournament.addon(next(e for e in tournament.tables[1].seats if e is not None))


def test_cancel() -> None:
    tournament = started(4)
    tournament.cancel()
    with pytest.raises(TournamentRuleError):
        quiet_hand(tournament, 1)


def test_state_is_json() -> None:
    tournament = started(30)
    bust(tournament, 1, [next(e for e in tournament.tables[1].seats if e is not None)])
    text = json.dumps(tournament.to_state())
    assert json.dumps(Tournament.from_state(json.loads(text)).to_state()) == text
    assert tournament.decisions()[0]["reason"]


# -- money --------------------------------------------------------------------------------------


def test_the_1710_entry_payout_example_shape() -> None:
    """1,710 entries at 1,000: 1st 217,121 ... 18-26th 7,844 (TOURNAMENT.md)."""
    pool = 1_710_000
    amounts = pay.payout_table(pool, 1_710, 1_000, PayoutRule())
    assert sum(amounts) == pool
    assert 0.14 * 1_710 <= len(amounts) <= 0.16 * 1_710, "about 15% of the field is paid"
    assert amounts == sorted(amounts, reverse=True)
    assert 0.12 <= amounts[0] / pool <= 0.20
    assert abs(amounts[0] - 217_121) / 217_121 < 0.02
    assert amounts[-1] >= 1_500, "min cash at least 1.5 buy-ins"
    tiers = pay.tiers(len(amounts))
    assert tiers[:13] == [(i, i) for i in range(1, 10)] + [(10, 11), (12, 13), (14, 17), (18, 26)]
    for first, last in tiers:
        assert len(set(amounts[first - 1 : last])) == 1, "a tier shares one amount"


@pytest.mark.parametrize(("pool", "entries", "unit"), [(1_000_003, 333, 1), (9_999_999, 5_000, 100), (7, 5, 1)])
def test_payouts_sum_exactly_whatever_the_rounding(pool: int, entries: int, unit: int) -> None:
    amounts = pay.payout_table(pool, entries, pool // entries, PayoutRule(round_to=unit))
    assert sum(amounts) == pool
    assert all(a % unit == 0 for a in amounts[1:])


def test_fixed_shares_for_more_places_than_entries_pay_the_whole_pool() -> None:
    """Three paid places, two entries: the third place's share is spread over the two places there are."""
    rule = PayoutRule(fixed_bp=(5_000, 3_000, 2_000))
    assert pay.payout_table(2_000, 2, 1_000, rule) == [1_250, 750]
    assert pay.payout_table(3_000, 3, 1_000, rule) == [1_500, 900, 600]
    report = simulate(2, seats=9, seed=1, config=TournamentConfig(buy_in=1_000, payout=rule))
    assert report.prizes_paid == report.prize_pool == 2_000


def test_guarantee_overlay() -> None:
    assert pay.prize_pool(entries=10, buy_in=100, guarantee=5_000).overlay == 4_000
    assert pay.prize_pool(entries=100, buy_in=100, guarantee=5_000).overlay == 0


def test_icm_and_chip_chop() -> None:
    prizes = [500, 300, 200]
    icm = pay.icm_deal([5_000, 3_000, 2_000], prizes)
    chop = pay.chip_chop_deal([5_000, 3_000, 2_000], prizes)
    assert sum(icm) == sum(chop) == 1_000
    assert icm == [384, 327, 289]  # Malmuth-Harville
    assert chop == [400, 320, 280]
    equal = pay.icm_deal([1, 1, 1, 1], [40, 30, 20, 10])
    assert equal == [25, 25, 25, 25]


def test_dead_button_after_moves() -> None:
    """The player due the big blind leaves a long table: nobody skips the big blind there, and the
    mover posts it at the short table (rule 11A), not twice in a row elsewhere."""
    tournament = started(18)  # 9 + 9
    long_table, short_table = tournament.tables[2], tournament.tables[1]
    bust(tournament, 1, [e for e in short_table.seats if e is not None][:2])
    [row] = [row for row in tournament.log if row[2] == "balance"]
    mover, source, from_seat, _, to_seat = row[3:8]
    assert source == 2
    assert from_seat == long_table.next_occupied(long_table.bb)
    # At the short table the mover takes the first open seat after the big blind [11A].
    assert to_seat == first_free_after(short_table, short_table.bb)
    next_bb = is_next_big_blind(short_table, to_seat)
    old_bb, old_sb = long_table.bb, long_table.sb
    quiet_hand(tournament, 2)  # the move happens, then table 2 deals its next hand
    assert long_table.seats[from_seat] is None
    assert long_table.bb == long_table.next_occupied(old_bb), "the next player takes the big blind"
    assert (long_table.sb, long_table.button) == (old_bb, old_sb)
    quiet_hand(tournament, 1)
    assert short_table.seats[to_seat] == mover
    assert (short_table.bb == to_seat) == next_bb


def test_the_big_blind_mover_gets_the_worst_seat_of_when_they_arrive() -> None:
    """The short table keeps dealing while the long table finishes its hand: the seat is chosen when the
    player arrives, from where the short table's big blind is then [11A]."""
    tournament = started(27)
    short = tournament.tables[1]
    # Two empty seats four apart, so the big blind passes one of them before the mover arrives.
    bust(tournament, 1, [short.seats[(short.bb + 1) % 9] or 0, short.seats[(short.bb + 5) % 9] or 0])
    [row] = [row for row in tournament.log if row[2] == "balance"]
    mover, source, _, _, planned = row[3:8]
    for _ in range(9):
        if first_free_after(short, short.bb) != planned:
            break
        quiet_hand(tournament, 1)
    worst_now = first_free_after(short, short.bb)
    assert worst_now != planned, "the short table's big blind went past the planned seat"
    [move] = of(MovePlayer, quiet_hand(tournament, source))
    assert (move.entry, move.to_seat) == (mover, worst_now)
    assert any(r[2] == "reseat" and r[3] == mover for r in tournament.log), "the new seat is logged with its reason"


def test_a_pause_during_a_break_stops_the_break_clock() -> None:
    structure = Structure(levels=(Level(10, 20, duration_s=60), Level(20, 40, duration_s=60)), breaks=(Break(1, 30),))
    tournament = started(9, structure=structure)
    tournament.tick(60_000)
    quiet_hand(tournament, 1)
    assert tournament.break_ends_ms == 90_000
    tournament.pause()
    assert not of(EndBreak, tournament.tick(200_000)), "paused: the break does not end"
    out = tournament.resume() + tournament.tick(229_000)
    assert not of(EndBreak, out)
    out = tournament.tick(230_000)
    assert of(EndBreak, out)
    assert of(ResumeTable, out) == [ResumeTable(1)]


def test_pko_bounty_goes_to_the_covering_winner_when_the_table_names_nobody() -> None:
    tournament = started(3, seats_per_table=3, bounty=100)
    a, b, c = [e for e in tournament.tables[1].seats if e is not None]
    stacks = stacks_of(tournament, 1)
    with pytest.raises(TournamentRuleError):
        tournament.hand_finished(1, stacks, knockouts={a: [b]})  # a did not bust
    stacks[b] += stacks[a]
    stacks[a] = 0
    with pytest.raises(TournamentRuleError):
        tournament.hand_finished(1, stacks, knockouts={a: [a]})  # a busted player eliminates nobody
    out = tournament.hand_finished(1, stacks)
    assert [(p.entry, p.amount) for p in of(AwardPrize, out) if p.prize == "bounty"] == [(b, 50)]
    assert tournament.entries[b].bounty == 150
    stacks = stacks_of(tournament, 1)
    stacks[c] += stacks[b]
    stacks[b] = 0
    out = tournament.hand_finished(1, stacks)
    assert tournament.status == "finished"
    assert tournament.bounties_paid == 300, "every bounty left the pool"


def test_a_late_entry_grows_the_pool_at_once() -> None:
    tournament = started(9, late_reg_until_level=2, buy_in=100)
    assert tournament.prize_pool == 900
    tournament.register("late")
    assert tournament.prize_pool == 1_000
    assert sum(tournament.payouts) == 1_000


def test_deal_offers_for_the_players_left() -> None:
    tournament = started(3, seats_per_table=3, payout=PayoutRule(fixed_bp=(5_000, 3_000, 2_000)), buy_in=1_000)
    a, b, c = [e for e in tournament.tables[1].seats if e is not None]
    stacks = {a: 15_000, b: 9_000, c: 6_000}
    tournament.hand_finished(1, stacks)
    chop = {row["entry"]: row["amount"] for row in tournament.deal_offer("chip-chop")}
    assert chop == {a: 1_200, b: 960, c: 840}, "600 locked up each, the other 1,200 by chips"
    icm = [row["amount"] for row in tournament.deal_offer("icm")]
    assert icm == pay.icm_deal([15_000, 9_000, 6_000], [1_500, 900, 600])
    assert sum(icm) == 3_000
    with pytest.raises(TournamentRuleError):
        tournament.deal_offer("coin-flip")


def test_idle_ticks_can_be_skipped_the_next_clock_event_says_when() -> None:
    """An engine ticked every second and one ticked only when ``next_clock_event_ms`` is due (plus the
    tick every fact brings) end every fact, and every due tick, in the same state with the same
    instructions: levels, a synchronized break, a pause during a break and outside it, hands all along."""
    structure = Structure(
        levels=(Level(10, 20, duration_s=60), Level(20, 40, duration_s=45), Level(40, 80, duration_s=30)),
        breaks=(Break(1, 30), Break(3, 20)),
    )
    every, skipping = started(18, structure=structure), started(18, structure=structure)
    out_every: list[Instruction] = []
    out_skipping: list[Instruction] = []
    skipped = 0
    for second in range(1, 400):
        now = second * 1000
        out_every += every.tick(now)
        due = skipping.next_clock_event_ms()
        if due is not None and now >= due:
            out_skipping += skipping.tick(now)
            assert skipping.to_state() == every.to_state()
        else:
            skipped += 1
        if second % 7 == 0:  # a fact: the clock first (as journal.apply does), then a hand at each table
            out_skipping += skipping.tick(now)
            for engine, out in ((every, out_every), (skipping, out_skipping)):
                for table_id in sorted(engine.tables):
                    if engine.tables[table_id].in_hand:
                        out += engine.hand_finished(table_id, stacks_of(engine, table_id))
            assert skipping.to_state() == every.to_state()
            assert out_skipping == out_every
        if second in (75, 200):  # paused on the first break, and during level 3
            out_skipping += skipping.tick(now)
            out_every += every.pause()
            out_skipping += skipping.pause()
            assert skipping.next_clock_event_ms() is None, "paused: nothing falls due on the clock"
        if second in (110, 230):
            out_skipping += skipping.tick(now)
            out_every += every.resume()
            out_skipping += skipping.resume()
            assert skipping.to_state() == every.to_state()
    assert len(of(StartBreak, out_every)) == len(of(EndBreak, out_every)) == 2
    assert len(of(NewLevel, out_every)) >= 3
    assert out_skipping == out_every
    assert skipped > 300, "most seconds change nothing"


def test_the_clock_read_projects_the_time_since_the_last_tick() -> None:
    structure = Structure(levels=(Level(10, 20, duration_s=60), Level(20, 40, duration_s=60)), breaks=(Break(1, 30),))
    tournament = started(9, structure=structure)
    tournament.tick(10_000)
    assert tournament.clock(25_000)["remaining_s"] == 35
    assert tournament.clock()["remaining_s"] == 50, "a read changes nothing"
    assert tournament.clock(90_000)["remaining_s"] == 0, "never past the next clock event"
    tournament.pause()
    assert tournament.clock(40_000)["remaining_s"] == 50, "paused: the level's time stands still"


def test_the_bounty_rule_entries_stay_open_after_bounties_and_close_with_the_first_place_prize() -> None:
    """ADR 0006's rule, in the engine: a bounty paid does not close late registration or rebuys; a place
    prize paid closes both."""
    engine = Tournament(TournamentConfig(buy_in=1_000, bounty=200, late_reg_until_level=3, seed=1))
    for player in ("a", "b", "c"):
        engine.register(player)
    engine.start()
    engine.bounties_paid = 100
    assert engine.registration_refusal("d") is None
    engine.prizes_paid = 1_000
    assert engine.registration_refusal("d") == "prizes are already being paid"
