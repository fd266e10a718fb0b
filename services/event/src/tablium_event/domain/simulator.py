"""Runs the engine alone to a winner with random bust-outs, as tables would report hands.

The simulator plays the lobby's part: it only sees the engine's instructions, keeps its own
picture of who sits where and which tables are dealing, reports a finished hand at a random
dealing table (chips conserved, some players busted), and checks that every move leaves a
table that is between hands.
"""

from __future__ import annotations

import gc
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from tablium_event.domain.config import TournamentConfig
from tablium_event.domain.engine import Tournament
from tablium_event.domain.instructions import (
    AwardPrize,
    BreakTable,
    EliminatePlayer,
    HoldTable,
    Instruction,
    MovePlayer,
    ResumeTable,
    SeatPlayer,
    SetStack,
)

BALANCING = frozenset({"balance", "broken", "break-table", "redirect", "move-withdrawn", "reseat"})


@dataclass
class Report:
    entrants: int
    tables_at_start: int = 0
    eliminations: int = 0
    moves: int = 0
    max_spread_after_balance: int = 0
    moves_mid_hand: int = 0
    places: list[tuple[str, int]] = field(default_factory=list)
    prize_pool: int = 0
    prizes_paid: int = 0
    hands: int = 0
    wall_s: float = 0.0
    # With ``time_decisions``: the time of each hand report that made a balancing decision (a move
    # planned, redirected or withdrawn, a seat re-chosen, a table broken), and apart the reports made
    # during hand-for-hand, where the last table of each hand releases every table: O(tables) by nature.
    decision_times: list[float] = field(default_factory=list)
    step_times: list[float] = field(default_factory=list)

    def to_dict(self, *, with_places: bool = True) -> dict[str, Any]:
        """The keys of ``tablium-tourney simulate --json``, in the issue's order (``places`` optional)."""
        result: dict[str, Any] = {
            "entrants": self.entrants,
            "tables_at_start": self.tables_at_start,
            "eliminations": self.eliminations,
            "moves": self.moves,
            "max_spread_after_balance": self.max_spread_after_balance,
            "moves_mid_hand": self.moves_mid_hand,
        }
        if with_places:
            result["places"] = [[player, place] for player, place in self.places]
        result.update(prize_pool=self.prize_pool, prizes_paid=self.prizes_paid, wall_s=round(self.wall_s, 3))
        return result


class TableRunner:
    """The lobby's picture of the tournament, built from instructions only."""

    def __init__(self) -> None:
        self.seated: dict[int, dict[int, int]] = {}  # table -> seat -> entry
        self.where: dict[int, tuple[int, int]] = {}  # entry -> (table, seat)
        self.dealing: list[int] = []
        self._index: dict[int, int] = {}
        self.held: set[int] = set()
        self.moves_mid_hand = 0
        self.moves = 0
        self.eliminated: set[int] = set()
        self.stacks: dict[int, int] = {}  # entry -> chips, as the tables know them
        self.awarded = 0
        self.bounties = 0

    def start_dealing(self, table: int) -> None:
        if table not in self._index and table in self.seated:
            self._index[table] = len(self.dealing)
            self.dealing.append(table)

    def stop_dealing(self, table: int) -> None:
        index = self._index.pop(table, None)
        if index is not None:
            last = self.dealing.pop()
            if last != table:
                self.dealing[index] = last
                self._index[last] = index

    def apply(self, instructions: Iterable[Instruction]) -> None:
        for instruction in instructions:
            if isinstance(instruction, SeatPlayer):
                self.eliminated.discard(instruction.entry)  # a director's undo brings a player back
                self._sit(instruction.entry, instruction.table, instruction.seat)
                self.stacks[instruction.entry] = instruction.stack
            elif isinstance(instruction, SetStack):
                self.stacks[instruction.entry] = instruction.stack
            elif isinstance(instruction, MovePlayer):
                self.moves += 1
                if instruction.from_table in self._index:
                    self.moves_mid_hand += 1
                if self.where.get(instruction.entry) != (instruction.from_table, instruction.from_seat):
                    raise AssertionError(f"move of {instruction.entry} from a seat it does not hold")
                self._leave(instruction.entry)
                self._sit(instruction.entry, instruction.to_table, instruction.to_seat)
            elif isinstance(instruction, EliminatePlayer):
                if instruction.entry not in self.eliminated:
                    self.eliminated.add(instruction.entry)
                    self._leave(instruction.entry)
            elif isinstance(instruction, HoldTable):
                self.stop_dealing(instruction.table)
                self.held.add(instruction.table)
            elif isinstance(instruction, ResumeTable):
                self.held.discard(instruction.table)
                self.start_dealing(instruction.table)
            elif isinstance(instruction, BreakTable):
                if self.seated.get(instruction.table):
                    raise AssertionError(f"table {instruction.table} broken with players on it")
                self.stop_dealing(instruction.table)
                self.held.discard(instruction.table)
                self.seated.pop(instruction.table, None)
            elif isinstance(instruction, AwardPrize):
                if instruction.prize == "place":
                    self.awarded += instruction.amount
                else:
                    self.bounties += instruction.amount

    def _sit(self, entry: int, table: int, seat: int) -> None:
        seats = self.seated.setdefault(table, {})
        if seat in seats or entry in self.where:
            raise AssertionError(f"entry {entry} seated twice or seat {table}/{seat} taken")
        seats[seat] = entry
        self.where[entry] = (table, seat)

    def _leave(self, entry: int) -> None:
        table, seat = self.where.pop(entry)
        del self.seated[table][seat]


def play_hand(
    rng: random.Random, players: list[int], stacks: dict[int, int], bust_weights: tuple[float, float, float]
) -> dict[int, int]:
    """Chips move between the table's players; zero, one or two of them bust. Chips are conserved."""
    after = {entry: stacks[entry] for entry in players}
    roll = rng.random()
    busts = 0 if roll < bust_weights[0] else 1 if roll < bust_weights[0] + bust_weights[1] else 2
    busts = min(busts, len(players) - 1)
    losers = rng.sample(players, busts)
    survivors = [entry for entry in players if entry not in losers]
    winner = rng.choice(survivors)
    for loser in losers:
        after[winner] += after[loser]
        after[loser] = 0
    if len(survivors) >= 2:
        a, b = rng.sample(survivors, 2)
        amount = rng.randint(0, after[a] // 2)
        after[a] -= amount
        after[b] += amount
    return after


def simulate(
    entrants: int,
    *,
    seats: int = 9,
    seed: int = 0,
    config: TournamentConfig | None = None,
    bust_weights: tuple[float, float, float] = (0.2, 0.7, 0.1),
    on_fact: Callable[[Tournament, TableRunner], None] | None = None,
    time_decisions: bool = False,
    clock_step_ms: int = 0,
) -> Report:
    """Register ``entrants``, start, and report random hands until the tournament is over."""
    rng = random.Random(seed ^ 0x5EED)  # noqa: S311 - a simulation, not a secret
    config = config or TournamentConfig(seats_per_table=seats, buy_in=1000, fee=100, seed=seed)
    config = replace(config, seats_per_table=seats, seed=seed)
    began = time.perf_counter()
    tournament = Tournament(config)
    for i in range(entrants):
        tournament.register(f"p{i + 1}")
    runner = TableRunner()
    started = tournament.start()
    runner.apply(started)
    report = Report(entrants=entrants, tables_at_start=len(tournament.tables))
    for table in tournament.tables:
        runner.start_dealing(table)
    if on_fact is not None:
        on_fact(tournament, runner)
    # The field's objects live as long as the event: kept out of the cyclic collector's full passes,
    # which would otherwise rescan every entry (a 0.5 s pause at 250,000 entrants) and make one hand's
    # cost depend on the field's size. The engine makes no reference cycles that would need them.
    gc.freeze()
    try:
        stacks = runner.stacks
        order = tournament.order
        perf = time.perf_counter
        spread = 0
        now = 0
        while tournament.status == "running":
            if clock_step_ms:
                # The clock runs as hands are played (and while every table waits out a break).
                now += clock_step_ms
                runner.apply(tournament.tick(now))
                if on_fact is not None:
                    on_fact(tournament, runner)
            if not runner.dealing:
                if clock_step_ms and tournament.break_ends_ms is not None:
                    continue
                raise AssertionError("no table is dealing but the tournament is running")
            table = runner.dealing[rng.randrange(len(runner.dealing))]
            players = list(runner.seated[table].values())
            after = play_hand(rng, players, stacks, bust_weights)
            runner.stop_dealing(table)
            logged, hand_for_hand = len(tournament.log), tournament.hand_for_hand
            t0 = perf()
            out = tournament.hand_finished(table, after)
            if time_decisions:
                spent = perf() - t0
                if hand_for_hand or tournament.hand_for_hand:
                    report.step_times.append(spent)
                elif any(row[2] in BALANCING for row in tournament.log[logged:]):
                    report.decision_times.append(spent)
            stacks.update(after)  # before the instructions: a director's correction (SetStack) comes after the hand
            runner.apply(out)
            if table not in runner.held and table in runner.seated:
                runner.start_dealing(table)
            if len(order) > 1:
                spread = max(spread, order.last()[0] - order.first()[0])
            if on_fact is not None:
                on_fact(tournament, runner)
    finally:
        gc.unfreeze()
    report.wall_s = perf() - began
    report.hands = tournament.hands
    report.eliminations = len(runner.eliminated)
    report.moves = runner.moves
    report.moves_mid_hand = runner.moves_mid_hand
    report.max_spread_after_balance = spread
    report.places = sorted(
        ((tournament.entries[entry].player, place) for entry, place in tournament.places()),
        key=lambda row: (row[1], row[0]),
    )
    report.prize_pool = tournament.prize_pool
    report.prizes_paid = tournament.prizes_paid
    return report
