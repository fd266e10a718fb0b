"""Balancing and breaking tables (TOURNAMENT.md "Balancing", "Breaking tables"; TDA 10B, 11A, 11C, 11D).

Fewest moves, planned at once and carried out as hands end: a planned move reserves its destination seat
(``Table.reserved``) and marks the player as leaving (``Table.outgoing``); the move itself is made only
when the source table is between hands. The balance order (``Tournament.order``: effective count, seeded
rank, id) finds the shortest and longest tables in O(log T); the movers index (``Tournament.movers``)
holds each open table's candidate [11A] keyed by how often they moved, so the least-moved candidate over
every longest table is one lookup. Both are kept right here (``rekey``, ``refresh_mover``) and rebuilt on
load. The 3-short rule [11D] decides when a short table waiting for players stops.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from tablium_event.domain.config import TournamentRuleError
from tablium_event.domain.field import Entry, Key, MoverKey, Table
from tablium_event.domain.instructions import Instruction, MovePlayer

if TYPE_CHECKING:
    from tablium_event.domain.engine import Tournament


class Balancing:
    """Moves, table breaks, the movers index. Owns the tolerance, the moves made and the undo of the last."""

    __slots__ = ("fixed_seats", "last_move", "moves", "t", "tolerance")

    def __init__(self, tournament: Tournament) -> None:
        self.t = tournament
        self.tolerance = tournament.config.tolerance
        self.moves = 0
        self.last_move: dict[str, Any] | None = None
        self.fixed_seats: set[int] = set()  # planned moves that keep their reserved seat (director undo)

    def dump(self) -> dict[str, Any]:
        return {
            "tolerance": self.tolerance,
            "moves": self.moves,
            "last_move": self.last_move,
            "fixed_seats": sorted(self.fixed_seats),
        }

    def load(self, state: Mapping[str, Any]) -> None:
        self.tolerance, self.moves, self.last_move = state["tolerance"], state["moves"], state["last_move"]
        self.fixed_seats = set(state["fixed_seats"])

    def three_short_stop(self, table: Table) -> bool:
        """[11D] "Play at a table 3 or more players short of the largest table stops once its blinds are
        affected, until it is balanced." The balance is planned at once (players are on their way); the
        short table deals on while its next hand has the very blinds it would have with them seated, and
        stops before the first hand whose big blind would pass a seat kept for one of them (or, heads-up,
        with the heads-up blinds). It deals again once they sit down or it is no longer 3 short."""
        t = self.t
        if not table.reserved or t.seating.longest_physical() - table.n < 3:
            return False
        if table.n <= 2 or table.bb < 0:
            return True
        size = len(table.seats)
        seat = (table.bb + 1) % size
        while table.seats[seat] is None:  # the seats the big blind passes on its way to the next player
            if seat in table.reserved:
                return True
            seat = (seat + 1) % size
        return False

    def set_tolerance(self, tolerance: int) -> list[Instruction]:
        t = self.t
        if tolerance < 1:
            raise TournamentRuleError("the balancing tolerance is at least 1")
        self.tolerance = tolerance
        t.note("tolerance", tolerance)
        out: list[Instruction] = []
        if t.status == "running":
            self.balance(out, None)
        return out

    def undo_move(self, action: dict[str, Any], out: list[Instruction]) -> None:
        t = self.t
        entry = t.entry(action["entry"])
        source = t.tables.get(entry.table)
        back = t.tables.get(action["from_table"])
        if (
            entry.busted
            or source is None
            or back is None
            or back.breaking
            or (entry.table, entry.seat) != (action["to_table"], action["to_seat"])
            or action["from_seat"] not in back.free_seats()
            or entry.id in source.outgoing
        ):
            raise TournamentRuleError("the move can no longer be undone")
        self.fixed_seats.add(entry.id)  # back to the very seat it came from, not the worst one
        entry.moves -= 1  # the mistaken move does not count (nor, once made, the way back)
        self.plan_move(entry, source, back, action["from_seat"], out, "undo-move")
        self.balance(out, None)

    def rekey(self, table: Table, old: Key) -> None:
        t = self.t
        if not table.breaking:
            t.order.remove(old)
            t.order.add(table.key())
        self.refresh_mover(table)

    def refresh_mover(self, table: Table) -> None:
        """Re-index the player ``table`` would send [11A] after anything that can change who that is or
        how long the table is: its seats, its big blind, a planned move, a seat lock, a player's moves."""
        t = self.t
        new: MoverKey | None = None
        if not table.breaking and table.id in t.tables:
            new = self.mover_key(table)
        if new != table.mover:
            if table.mover is not None:
                t.movers.remove(table.mover)
            if new is not None:
                t.movers.add(new)
            table.mover = new

    def plan_move(
        self, entry: Entry, source: Table, dest: Table, seat: int, out: list[Instruction], kind: str, *why: int
    ) -> None:
        t = self.t
        old_dest = dest.key()
        old_source = source.key()
        dest.reserved[seat] = entry.id
        source.outgoing[entry.id] = (dest.id, seat)
        self.rekey(dest, old_dest)
        self.rekey(source, old_source)
        t.note(kind, entry.id, source.id, entry.seat, dest.id, seat, *why)
        if not source.in_hand:
            self.execute_move(entry, out)

    def execute_move(self, entry: Entry, out: list[Instruction]) -> None:
        t = self.t
        source = t.tables[entry.table]
        to_table, to_seat = source.outgoing.pop(entry.id)
        dest = t.tables[to_table]
        del dest.reserved[to_seat]
        if entry.id in self.fixed_seats:
            self.fixed_seats.discard(entry.id)
            entry.moves -= 1  # going back to where a mistaken move took it is no move of its own
        elif not source.breaking and dest.bb >= 0:
            # The destination may have dealt since the move was planned: the worst position [11A] is
            # taken from where its big blind is now, not where it was.
            worst = t.seating.worst_seat(dest)
            if worst != to_seat:
                t.note("reseat", entry.id, dest.id, worst, to_seat)
                to_seat = worst
        elif entry.seat == source.bb and t.seating.posts_big_blind_next(dest, to_seat):
            # No big blind twice in a row because of a move [32]: the seat was drawn away from the next big
            # blind at the break, but the destination has dealt since. Drawn again among the other seats.
            others = [s for s in dest.free_seats() if not t.seating.posts_big_blind_next(dest, s)]
            if others:
                seat = t.rng.choice(others)
                t.note("redraw", entry.id, dest.id, seat, to_seat)
                to_seat = seat
        from_seat = entry.seat
        t.seating.unseat(entry, source)
        t.seating.seat(entry, dest, to_seat)
        entry.moves += 1
        self.moves += 1
        reason = "table broken: random draw [10B]" if source.breaking else "balancing [11A]"
        out.append(MovePlayer(entry.id, entry.player, source.id, from_seat, dest.id, to_seat, reason))
        self.last_move = {
            "entry": entry.id,
            "from_table": source.id,
            "from_seat": from_seat,
            "to_table": dest.id,
            "to_seat": to_seat,
        }
        if dest.bb < 0:
            t.seating.first_positions(dest)
        # Neither table's effective count changed, but who each would send next did.
        self.refresh_mover(dest)
        self.refresh_mover(source)
        t.timing.maybe_release(dest, out)
        if source.breaking:
            t.seating.close_if_empty(source, out)

    def cancel_move(self, entry: Entry, source: Table, out: list[Instruction], kind: str = "move-cancelled") -> None:
        t = self.t
        to_table, to_seat = source.outgoing.pop(entry.id)
        self.fixed_seats.discard(entry.id)
        dest = t.tables[to_table]
        old_dest, old_source = dest.key(), source.key()
        del dest.reserved[to_seat]
        self.rekey(dest, old_dest)
        if entry.stack > 0:
            # Withdrawn, not busted: the player stays, so the source counts them again.
            source.outgoing[entry.id] = (to_table, to_seat)
            old_source = source.key()
            del source.outgoing[entry.id]
            self.rekey(source, old_source)
        t.note(kind, entry.id, source.id, to_table)
        t.timing.maybe_release(dest, out)

    def break_tables(self, out: list[Instruction]) -> None:
        """Break a table as soon as the players left fit in one fewer table, by the fixed order."""
        t = self.t
        seats = t.config.seats_per_table
        while len(t.order) > 1 and t.remaining <= (len(t.order) - 1) * seats:
            match t.config.break_order:
                case "highest":
                    table_id = t.numbers.last()
                case "lowest":
                    table_id = t.numbers.first()
                case _:
                    table_id = t.numbers[t.rng.randrange(len(t.numbers))]
            table = t.tables[table_id]
            t.order.remove(table.key())
            t.numbers.remove(table_id)
            table.breaking = True
            self.refresh_mover(table)
            t.note("break-table", table_id, t.remaining, len(t.order), t.config.break_order)
            for seat, entry_id in list(table.reserved.items()):
                # A player on the way here stays where they are (balancing runs next), unless their own
                # table is breaking too; then they go to a shortest table instead.
                entry = t.entries[entry_id]
                source = t.tables[entry.table]
                old = source.key()
                del table.reserved[seat]
                del source.outgoing[entry_id]
                self.rekey(source, old)
                if source.breaking:
                    dest = t.seating.shortest_with_seat(out)
                    self.plan_move(entry, source, dest, t.rng.choice(dest.free_seats()), out, "redirect")
                else:
                    t.note("move-withdrawn", entry_id, source.id, table_id)
            movers = [e for e in table.seats if e is not None and e not in table.outgoing]
            t.rng.shuffle(movers)
            for entry_id in movers:
                entry = t.entries[entry_id]
                dest = t.seating.shortest_with_seat(out)
                free = dest.free_seats()
                if entry.seat == table.bb:
                    # No big blind twice in a row because of a move [32]: not the seat next in line for it
                    # (checked again on arrival: the destination may deal before this table's hand ends).
                    free = [s for s in free if not t.seating.posts_big_blind_next(dest, s)] or free
                seat = t.rng.choice(free)
                self.plan_move(entry, table, dest, seat, out, "broken")
            t.seating.close_if_empty(table, out)

    def balance(self, out: list[Instruction], reporting: Table | None) -> None:
        """Fewest moves: each move takes one player from a longest table to a shortest one."""
        t = self.t
        order = t.order
        while len(order) > 1:
            low, high = order.first(), order.last()
            # Within tolerance, unless a table is left with one player while another can spare one.
            if high[0] - low[0] <= self.tolerance and not low[0] < 2 < high[0]:
                return
            dest = t.tables[low[2]]
            if dest.id == self.next_to_break() and len(order) > 2 and order[1][0] == low[0]:
                # Not to the table that breaks next when another is as short: its players move again soon.
                dest = t.tables[order[1][2]]
            if dest.outgoing and self.withdraw_outgoing(dest, out):
                continue
            longest = t.tables[high[2]]
            if longest.reserved and dest.free_seats() and self.redirect_incoming(longest, dest):
                continue
            choice = self.pick_mover(high[0], low[0], reporting)
            if choice is None:
                t.note("balance-blocked")
                return
            source, entry = choice
            if not dest.free_seats():
                dest = t.seating.shortest_with_seat(out)
            if dest is source:
                t.note("balance-blocked")
                return
            seat = t.seating.worst_seat(dest, arrives_now=not source.in_hand)
            counts = (source.effective, dest.effective, self.tolerance, entry.moves)
            self.plan_move(entry, source, dest, seat, out, "balance", *counts)

    def next_to_break(self) -> int | None:
        """The table the break order takes next (none is known in advance for a random order)."""
        numbers, order = self.t.numbers, self.t.config.break_order
        if not numbers or order == "random":
            return None
        return numbers.last() if order == "highest" else numbers.first()

    def redecide(self, source: Table, out: list[Instruction]) -> None:
        """``source`` finished its hand and lost players in it: a move it planned earlier is decided again,
        and withdrawn where its target can spare the player now (9/9/7: the 9 that was to send one loses
        two, so the 7 and it are even, and one move from the other 9 suffices; making it would need two)."""
        while not source.breaking and source.outgoing and self.withdraw_outgoing(source, out):
            pass

    def redirect_incoming(self, long: Table, short: Table) -> bool:
        """Fewest moves: a player still on the way to a long table goes to the short one instead
        (not one the director sent back to their seat, nor one coming from the short table itself)."""
        t = self.t
        found = next(
            (
                (seat, entry_id)
                for seat, entry_id in long.reserved.items()
                if entry_id not in self.fixed_seats and t.entries[entry_id].table != short.id
            ),
            None,
        )
        if found is None:
            return False
        seat, entry_id = found
        source = t.tables[t.entries[entry_id].table]
        old_long, old_short = long.key(), short.key()
        del long.reserved[seat]
        to_seat = t.seating.worst_seat(short, arrives_now=not source.in_hand)
        short.reserved[to_seat] = entry_id
        source.outgoing[entry_id] = (short.id, to_seat)
        self.rekey(long, old_long)
        self.rekey(short, old_short)
        t.note("redirect", entry_id, source.id, t.entries[entry_id].seat, short.id, to_seat)
        return True

    def withdraw_outgoing(self, short: Table, out: list[Instruction]) -> bool:
        """Fewest moves: a short table keeps a player it was about to send to a table that can spare it."""
        t = self.t
        for entry_id, (to_table, _) in short.outgoing.items():
            if entry_id not in self.fixed_seats and t.tables[to_table].effective >= short.effective + 2:
                self.cancel_move(t.entries[entry_id], short, out, "move-withdrawn")
                return True
        return False

    def pick_mover(self, longest: int, shortest: int, reporting: Table | None) -> tuple[Table, Entry] | None:
        """The player due the big blind next at a longest table [11A], over every longest table: the one
        moved least often ("never bouncing the same player twice when another choice exists"), then the
        table that just reported (its move happens at once), then the seeded rank [11C]. The movers index
        holds each table's candidate, so this is one lookup whatever the field."""
        t = self.t
        if not t.movers:
            return None
        top = t.movers.last()
        if top[0] != longest and top[0] - shortest < 2:
            # Every candidate at the longest tables is locked or already leaving: the others balance among
            # themselves while a move still narrows the spread.
            return None
        table = t.tables[top[4]]
        if reporting is not None and reporting.mover is not None and reporting.mover[:3] == top[:3]:
            table = reporting
        entry = self.candidate(table)
        return None if entry is None else (table, entry)

    def candidate(self, table: Table) -> Entry | None:
        """The player ``table`` would send [11A] (see ``mover_key``)."""
        found = self._candidate(table)
        return None if found is None else found[0]

    def mover_key(self, table: Table) -> MoverKey | None:
        """``table``'s row in the movers index: its effective count, then its candidate's moves, then
        whether the candidate is the player due the big blind (players passed over in big-blind order)."""
        found = self._candidate(table)
        if found is None:
            return None
        entry, passed = found
        return (table.n - len(table.outgoing) + len(table.reserved), -entry.moves, -passed, table.rank, table.id)

    def _candidate(self, table: Table) -> tuple[Entry, int] | None:
        """The player due the big blind next, unless they moved more often than another player there; then
        the least-moved one, in big-blind order ("never bouncing the same player twice when another choice
        exists": a player just moved in sits in the next big blind seat). Never a locked seat or a player
        already leaving. With how many eligible players it passed over."""
        seats, outgoing, entries = table.seats, table.outgoing, self.t.entries  # hot: every deal and seat change
        size = len(seats)
        start = table.bb if table.bb >= 0 else 0
        best: Entry | None = None
        best_moves = passed = eligible = 0
        for step in range(1, size + 1):
            entry_id = seats[(start + step) % size]
            if entry_id is None or entry_id in outgoing:
                continue
            entry = entries[entry_id]
            if entry.locked:
                continue
            moves = entry.moves
            if best is None or moves < best_moves:
                best, best_moves, passed = entry, moves, eligible
                if not moves:
                    break
            eligible += 1
        return None if best is None else (best, passed)
