"""Seating (TOURNAMENT.md "Seating", dead button [32]): the seat draw [7], late entries and re-entries
[8, 10A], opening and closing tables, the worst seat for a mover [11A], and the button and blinds as
each hand is dealt [32, 34B].

Keeps the field's indexes right as seats change: ``Tournament.by_count`` (tables by physical count, for
the 3-short rule) here; the balance order and the movers index through ``Balancing.rekey``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from tablium_event.domain.config import TournamentRuleError
from tablium_event.domain.field import WAITING, Entry, Table
from tablium_event.domain.instructions import BreakTable, Instruction, OpenTable, SeatPlayer

if TYPE_CHECKING:
    from tablium_event.domain.engine import Tournament


class Seating:
    """Seats and tables. Stateless beyond the field the aggregate holds."""

    __slots__ = ("t",)

    def __init__(self, tournament: Tournament) -> None:
        self.t = tournament

    def draw(self, out: list[Instruction]) -> list[Table]:
        """Random seat draw [7]: as few tables as the field needs, as even as possible, seats drawn at random."""
        t = self.t
        seats = t.config.seats_per_table
        ids = list(t.entries)
        t.rng.shuffle(ids)
        count = math.ceil(len(ids) / seats)
        tables = [self.open_table(out) for _ in range(count)]
        per_table: list[list[int]] = [[] for _ in tables]
        for i, entry_id in enumerate(ids):
            per_table[i % count].append(entry_id)
        for table, members in zip(tables, per_table, strict=True):
            old = table.key()
            for entry_id, seat in zip(members, t.rng.sample(range(seats), len(members)), strict=True):
                self.seat(t.entries[entry_id], table, seat)
                out.append(self.seat_instruction(t.entries[entry_id], "random draw [7]"))
            t.balancing.rekey(table, old)
        return tables

    def open_table(self, out: list[Instruction]) -> Table:
        t = self.t
        table = Table(t.next_table, t.config.seats_per_table, t.rng.getrandbits(31))
        t.next_table += 1
        t.tables[table.id] = table
        t.by_count[0] += 1
        t.order.add(table.key())
        t.numbers.add(table.id)
        out.append(OpenTable(table.id))
        return table

    def seat(self, entry: Entry, table: Table, seat: int) -> None:
        t = self.t
        table.seats[seat] = entry.id
        t.by_count[table.n] -= 1
        table.n += 1
        t.by_count[table.n] += 1
        entry.table = table.id
        entry.seat = seat
        entry.fresh, entry.waiting = True, False

    def unseat(self, entry: Entry, table: Table) -> None:
        t = self.t
        table.seats[entry.seat] = None
        t.by_count[table.n] -= 1
        table.n -= 1
        t.by_count[table.n] += 1

    def seat_instruction(self, entry: Entry, reason: str) -> SeatPlayer:
        return SeatPlayer(entry.id, entry.player, entry.table, entry.seat, entry.stack, reason)

    def late_seat(self, entry: Entry, out: list[Instruction]) -> None:
        """Late entries and re-entries draw an open seat [8, 10A] at a shortest table (a new one if all are full)."""
        t = self.t
        table = self.shortest_with_seat(out, allow_open=True)
        seat = t.rng.choice(table.free_seats())
        old = table.key()
        self.seat(entry, table, seat)
        t.balancing.rekey(table, old)
        out.append(self.seat_instruction(entry, "late registration: random open seat [8]"))
        if not table.in_hand and table.held is None and table.n < 2:
            t.timing.hold(table, WAITING, out)
        t.timing.maybe_release(table, out)

    def shortest_with_seat(self, out: list[Instruction], *, allow_open: bool = False) -> Table:
        """A shortest table with a physically open seat. A table can be full while one of its players
        waits to leave; then that pending move is withdrawn and the seat it reserved is used instead."""
        t = self.t
        seats = t.config.seats_per_table
        withdraw: Table | None = None
        for key in t.order:
            if key[0] >= seats:
                break
            table = t.tables[key[2]]
            if table.free_seats():
                return table
            if withdraw is None and table.outgoing:
                withdraw = table
        if withdraw is not None:
            entry_id = next(iter(withdraw.outgoing))
            to_table = withdraw.outgoing[entry_id][0]
            t.balancing.cancel_move(t.entries[entry_id], withdraw, out, "move-withdrawn")
            return t.tables[to_table]
        if allow_open:
            return self.open_table(out)
        raise TournamentRuleError("no open seat")

    def longest_physical(self) -> int:
        t = self.t
        for count in range(len(t.by_count) - 1, -1, -1):
            if t.by_count[count]:
                return count
        return 0

    def worst_seat(self, table: Table, *, arrives_now: bool = True) -> int:
        """The seat that would be big blind next, or the one after it (never the small blind) [11A].

        "Next" is the first hand the mover plays there: the one after the hand in progress, or, when
        the table is about to deal and the mover arrives only later, the one after that."""
        t = self.t
        if table.bb < 0:
            return t.rng.choice(table.free_seats())
        reference = table.bb
        if not arrives_now and not table.in_hand and table.held is None and table.n:
            reference = table.next_occupied(table.bb)
        size = len(table.seats)
        for step in range(1, size + 1):
            seat = (reference + step) % size
            if table.seats[seat] is None and seat not in table.reserved:
                return seat
        raise TournamentRuleError(f"table {table.id} has no open seat")

    def posts_big_blind_next(self, table: Table, seat: int) -> bool:
        """Would a player sitting down in the open ``seat`` post the big blind in the next hand dealt at
        ``table``? (The big blind moves to the first player after the current one [32].)"""
        if table.bb < 0:
            return False
        size = len(table.seats)
        for step in range(1, size):
            candidate = (table.bb + step) % size
            if candidate == seat:
                return True
            if table.seats[candidate] is not None:
                return False
        return False

    def first_positions(self, table: Table) -> None:
        """Button drawn at random; blinds follow it."""
        t = self.t
        occupied = [s for s, e in enumerate(table.seats) if e is not None]
        if not occupied:
            return
        table.button = t.rng.choice(occupied)
        if table.n == 2:
            table.sb = table.button
            table.bb = table.next_occupied(table.button)
        else:
            table.sb = table.next_occupied(table.button)
            table.bb = table.next_occupied(table.sb)
        t.balancing.refresh_mover(table)
        for entry_id in table.seats:  # everyone at the first positions is dealt in
            if entry_id is not None:
                t.entries[entry_id].fresh = t.entries[entry_id].waiting = False

    def deal(self, table: Table) -> None:
        """Dead-button rule [32]: the big blind moves to the next player; the small blind and the button
        take the previous big blind's and small blind's seats, even if empty. Heads-up the small blind
        has the button [34B]."""
        t = self.t
        table.in_hand = True
        if table.bb < 0:
            self.first_positions(table)
            return
        previous_bb, previous_sb = table.bb, table.sb
        table.bb = table.next_occupied(previous_bb)
        if table.n == 2:
            table.sb = table.button = table.next_occupied(table.bb)
        else:
            table.sb = previous_bb
            table.button = previous_sb
        t.balancing.refresh_mover(table)
        self.deal_in(table)

    def deal_in(self, table: Table) -> None:
        """TOURNAMENT.md "Seating": a new or moved player is dealt in unless seated between the small blind
        and the button (strictly after the button, before the small blind): then they wait until the
        button has passed them, which under the dead-button rule is the next hand. Nobody waits at a
        table's first hand (``first_positions``) or heads-up (the small blind has the button)."""
        size = len(table.seats)
        gap = (table.sb - table.button) % size  # 0 heads-up
        for seat, entry_id in enumerate(table.seats):
            if entry_id is None:
                continue
            entry = self.t.entries[entry_id]
            if entry.fresh or entry.waiting:
                entry.waiting = 0 < (seat - table.button) % size < gap
                entry.fresh = False

    def close_if_empty(self, table: Table, out: list[Instruction]) -> None:
        t = self.t
        if table.n == 0 and not table.reserved and table.id in t.tables:
            del t.tables[table.id]
            t.by_count[0] -= 1
            if table.held is not None:
                t.timing.held -= 1
            out.append(BreakTable(table.id))
