"""The tournament engine: facts in, instructions out. Pure, deterministic given the seed.

Facts: registration, start, a hand finished at a table (with the stacks after it), a clock
tick, a director command. Instructions: seat, move (only when the source table is between
hands), break a table, hold/resume a table, new level, start/end a break, hand-for-hand,
eliminate at a place, award a prize. Rule numbers in brackets are the TDA's, as quoted in
TOURNAMENT.md.

Scale: tables are kept in a sorted list keyed by (effective players, seeded rank, id), so the
longest and the shortest table are found in O(log T); one hand touches its own table, the
tables that send or receive a player, and nothing else. "Effective" players count a seat
reserved for an incoming player and not a player who is leaving after the current hand: the
balance is planned at once and carried out as hands end.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from tablium_event.domain import payouts as pay
from tablium_event.domain.config import TournamentConfig, TournamentRuleError
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
    OpenTable,
    ResumeTable,
    SeatPlayer,
    SetStack,
    StartBreak,
    TournamentFinished,
    TournamentStarted,
)
from tablium_event.domain.sorted import SortedList

Key = tuple[int, int, int]  # (effective players, seeded rank, table id)
MoverKey = tuple[int, int, int, int]  # (effective players, -moves of its due-big-blind player, seeded rank, table id)
# The version of the rules this engine applies. Bump it with any change that can make a different decision
# from the same facts (who moves, when a table holds, what is accepted): a journal written under one version
# must not be replayed by another (docs/adr/0006-tournament-engine.md, "Rules version").
RULES_VERSION = 3  # 2: fixed payout shares for more places than entries pay the whole pool; 3: exact payout curve,
# and no purchase or entry that would grow the pool into a place already decided

WAITING = "waiting for players"
SHORT = "3 short: waiting for players [11D]"

# Decision log rows are [seq, hands played, kind, *numbers]; the reason is rendered from these
# templates when read, so a 250,000-entrant event keeps a compact log.
REASONS: dict[str, str] = {
    "balance": "table {1} had {5} and table {3} had {6} players (tolerance {7}): entry {0}, due the big blind "
    "next at the long table [11A] and moved {8} time(s) before, goes from seat {2} to seat {4}, the next big "
    "blind at the short table",
    "broken": "table {1} broken: entry {0} drew seat {4} at table {3}, a shortest table [10B]",
    "redirect": "entry {0}, still at table {1}, goes to table {3} seat {4} instead: its first destination is "
    "long now or breaking",
    "reseat": "entry {0} takes seat {2} at table {1}, not seat {3}: table {1} dealt since the move was planned, "
    "and seat {2} is the next big blind now [11A]",
    "undo-move": "director undid the move of entry {0}: back to table {3} seat {4} after the current hand",
    "move-cancelled": "entry {0} busted at table {1} before moving to table {2}",
    "move-withdrawn": "entry {0} stays at table {1}: the seat reserved at table {2} is needed sooner",
    "break-table": "{1} players fit in {2} tables: table {0} breaks (break order: {3})",
    "balance-blocked": "every candidate at the longest tables is locked or already moving",
    "eliminate": "entry {0} eliminated at table {1}: place {2}" + "{3}",
    "h4h-bust": "entry {0} busted in a hand-for-hand hand at table {1}; placed when every table has played it",
    "break-due": "break due after level {0}: every table finishes its hand and waits",
    "break-start": "every table is waiting: break of {0}s",
    "pause": "director paused the tournament",
    "resume": "director resumed the tournament",
    "lock": "director set the seat lock of entry {0} to {1}",
    "tolerance": "director set the balancing tolerance to {0}",
    "undo-bust": "director undid the bust-out of entry {0}: table {1} seat {2}, {4} chips back from entry {3}",
    "undo-bust-pending": "director undid the bust-out of entry {0}: done when table {1} finishes its hand",
    "undo-dropped": "the undo of the bust-out of entry {0} was dropped: {1}",
    "registration": "registration closed with {0} entries",
    "h4h-on": "{0} players left and {1} paid: hand-for-hand",
    "h4h-off": "hand-for-hand over: {0} players left",
    "finish": "tournament finished",
}
BREAK_ORDERS = ("highest", "lowest", "random")


def describe(row: Sequence[Any]) -> dict[str, Any]:
    """A decision log row as the director reads it."""
    seq, hands, kind, *data = row
    text = REASONS.get(kind, kind).format(*data, *[""] * 10)
    return {"seq": seq, "hands": hands, "kind": kind, "reason": text, "data": data}


class Entry:
    """One entry (a re-entry is a new one): its seat, stack, moves and finish."""

    __slots__ = (
        "addon",
        "bounty",
        "busted",
        "hand_start",
        "id",
        "locked",
        "moves",
        "number",
        "place",
        "place_to",
        "player",
        "prize",
        "seat",
        "stack",
        "table",
    )

    def __init__(self, entry_id: int, player: str, number: int, stack: int, bounty: int) -> None:
        self.id = entry_id
        self.player = player
        self.number = number
        self.stack = stack
        self.hand_start = stack
        self.table = 0
        self.seat = -1
        self.moves = 0
        self.busted = False
        self.locked = False
        self.place = 0
        self.place_to = 0
        self.prize = 0
        self.bounty = bounty
        self.addon = False

    FIELDS = (
        "id",
        "player",
        "number",
        "stack",
        "hand_start",
        "table",
        "seat",
        "moves",
        "busted",
        "locked",
        "place",
        "place_to",
        "prize",
        "bounty",
        "addon",
    )

    def dump(self) -> list[Any]:
        return [getattr(self, name) for name in self.FIELDS]

    @classmethod
    def load(cls, row: Sequence[Any]) -> Entry:
        entry = cls.__new__(cls)
        for name, value in zip(cls.FIELDS, row, strict=True):
            setattr(entry, name, value)
        return entry


class Table:
    __slots__ = (
        "bb",
        "breaking",
        "button",
        "held",
        "id",
        "in_hand",
        "mover",
        "n",
        "outgoing",
        "rank",
        "reserved",
        "sb",
        "seats",
    )

    def __init__(self, table_id: int, seats: int, rank: int) -> None:
        self.id = table_id
        self.seats: list[int | None] = [None] * seats
        self.n = 0
        self.rank = rank
        self.reserved: dict[int, int] = {}  # seat -> incoming entry
        self.outgoing: dict[int, tuple[int, int]] = {}  # entry -> (table, seat) after the current hand
        self.bb = -1
        self.sb = -1
        self.button = -1
        self.in_hand = False
        self.held: str | None = None
        self.breaking = False
        self.mover: MoverKey | None = None  # this table's entry in Tournament.movers (derived, not stored)

    @property
    def effective(self) -> int:
        return self.n - len(self.outgoing) + len(self.reserved)

    def key(self) -> Key:
        return (self.n - len(self.outgoing) + len(self.reserved), self.rank, self.id)

    def next_occupied(self, seat: int) -> int:
        size = len(self.seats)
        for step in range(1, size + 1):
            candidate = (seat + step) % size
            if self.seats[candidate] is not None:
                return candidate
        return -1

    def free_seats(self) -> list[int]:
        return [s for s, entry in enumerate(self.seats) if entry is None and s not in self.reserved]

    def dump(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "seats": self.seats,
            "rank": self.rank,
            "reserved": [[seat, entry] for seat, entry in self.reserved.items()],
            "outgoing": [[entry, to[0], to[1]] for entry, to in self.outgoing.items()],
            "bb": self.bb,
            "sb": self.sb,
            "button": self.button,
            "in_hand": self.in_hand,
            "held": self.held,
            "breaking": self.breaking,
        }

    @classmethod
    def load(cls, data: Mapping[str, Any]) -> Table:
        table = cls(data["id"], len(data["seats"]), data["rank"])
        table.seats = list(data["seats"])
        table.n = sum(1 for entry in table.seats if entry is not None)
        table.reserved = dict(data["reserved"])
        table.outgoing = {entry: (to_table, to_seat) for entry, to_table, to_seat in data["outgoing"]}
        table.bb, table.sb, table.button = data["bb"], data["sb"], data["button"]
        table.in_hand, table.held, table.breaking = data["in_hand"], data["held"], data["breaking"]
        return table


class Tournament:
    """One tournament's rules state. Every public method is a fact; it returns instructions."""

    def __init__(self, config: TournamentConfig) -> None:
        config.check()
        self.config = config
        # Seeded on purpose: every draw must replay identically from the recorded state (not for secrecy).
        self.rng = random.Random(config.seed)  # noqa: S311
        self.status = "registering"  # registering | running | finished | cancelled
        self.entries: dict[int, Entry] = {}
        self.by_player: dict[str, list[int]] = {}
        self.tables: dict[int, Table] = {}
        self.order: SortedList[Key] = SortedList()
        # Per table, the player it would send [11A] (the next big blind, not locked, not leaving), keyed by
        # how often that player moved before: the least-moved candidate over every longest table in O(log T).
        self.movers: SortedList[MoverKey] = SortedList()
        # Tables by physical player count (0..seats), for the 3-short rule [11D].
        self.by_count = [0] * (config.seats_per_table + 1)
        self.numbers: SortedList[int] = SortedList()
        self.next_table = 1
        self.tolerance = config.tolerance
        self.remaining = 0
        self.placed = 0  # entries given a place, counted from the bottom
        self.unplaced: list[list[int]] = []  # bust groups (worst first) waiting for the field to be final
        self.registration_open = True
        self._payouts: list[int] | None = None  # the payout table, computed when first needed
        self.prize_pool = 0
        self.prizes_paid = 0
        self.bounties_paid = 0
        self.rebuy_bounties = 0  # PKO bounty parts of rebuys, added to the buyers' bounties
        self.rebuys = 0
        self.addons = 0
        # Entries that bought a rebuy (paid, counted in the pool) whose chips come with their table's next report.
        self.pending_rebuys: list[int] = []
        self.level = 1
        self.level_elapsed_ms = 0
        self.now_ms = 0
        self.clock_paused = False
        self.break_due = False
        self.break_ends_ms: int | None = None
        self.barrier: str | None = None  # break | h4h | pause
        self.hand_for_hand = False
        self.h4h_round = False
        self.round_busts: list[tuple[int, int]] = []  # (table, entry) busted in this hand-for-hand hand
        self.held = 0
        self.hands = 0
        self.moves = 0
        self.log: list[list[Any]] = []
        self.last_bust: dict[str, Any] | None = None
        self.last_move: dict[str, Any] | None = None
        self.fixed_seats: set[int] = set()  # planned moves that keep their reserved seat (director undo)
        self.pending_undo: dict[str, Any] | None = None  # a bust-out undo waiting for its table's hand to end
        self.winners: list[int] = []

    # ------------------------------------------------------------------ registration

    def register(self, player: str) -> tuple[int, list[Instruction]]:
        """A new entry for ``player`` (a re-entry when an earlier one busted). Returns (entry id, instructions)."""
        refusal = self.registration_refusal(player)
        if refusal is not None:
            raise TournamentRuleError(refusal)
        config = self.config
        previous = self.by_player.get(player, [])
        entry_id = len(self.entries) + 1
        entry = Entry(entry_id, player, len(previous) + 1, config.starting_stack, config.bounty)
        self.entries[entry_id] = entry
        self.by_player.setdefault(player, []).append(entry_id)
        out: list[Instruction] = []
        if self.status == "running":
            self.remaining += 1
            self._refresh_payouts()
            self._late_seat(entry, out)
            self._balance(out, None)
        elif config.format == "sng" and len(self.entries) == config.seats_per_table:
            out.extend(self.start())
        return entry_id, out

    def registration_refusal(self, player: str) -> str | None:
        """Why ``player`` cannot enter now, or None (asked before any money is taken)."""
        if self.status not in ("registering", "running") or not self.registration_open:
            return "registration is closed"
        previous = self.by_player.get(player, [])
        if any(not self.entries[e].busted for e in previous):
            return "the player already has a live entry"
        if len(previous) > self.config.max_reentries:
            return "no re-entries left"
        if self.config.format == "sng" and len(self.entries) >= self.config.seats_per_table:
            return "the sit-and-go is full"
        if self.prizes_paid:
            # The bounty rule (ADR 0006): bounties paid leave entries and rebuys open (a bounty comes from
            # the bounty parts, never from the prize pool a later entry joins); the first place prize closes them.
            return "prizes are already being paid"
        if self._would_pay_a_decided_place(self.config.price("entry").prize_pool, 1):
            return "the prize pool can no longer grow: places it would pay are decided"
        return None

    def _would_pay_a_decided_place(self, extra_pool: int, extra_entries: int = 0) -> bool:
        """Whether a pool grown by ``extra_pool`` would pay a place already given to a busted entry (which
        was awarded what the smaller pool paid there: nothing). A satellite's next seat or cash remainder,
        a bigger field's extra paid place: the pool may not grow past what is decided."""
        if not self.placed:
            return False
        config = self.config
        entries = len(self.entries) + extra_entries
        pool = max(self.prize_pool, self.pool_collected + extra_pool)
        if config.format == "satellite":
            paid = pay.satellite_places_paid(pool, config.satellite_seat_value, entries)
        else:
            paid = pay.places_paid(pool, entries, config.buy_in, config.payout)
        best_decided = len(self.entries) - self.placed + 1
        return best_decided <= paid

    def unregister(self, player: str) -> int:
        """Before the start only; returns the removed entry id."""
        if self.status != "registering":
            raise TournamentRuleError("unregistering is possible only before the start")
        ids = self.by_player.get(player)
        if not ids:
            raise TournamentRuleError("the player is not registered")
        entry_id = ids.pop()
        if not ids:
            del self.by_player[player]
        del self.entries[entry_id]
        # Entry ids stay dense: renumber the last one into the hole.
        last = len(self.entries) + 1
        if entry_id != last:
            moved = self.entries.pop(last)
            moved.id = entry_id
            self.entries[entry_id] = moved
            owned = self.by_player[moved.player]
            owned[owned.index(last)] = entry_id
        return entry_id

    def start(self) -> list[Instruction]:
        """Random seat draw [7]: tables as even as possible, seats drawn at random."""
        if self.status != "registering":
            raise TournamentRuleError("the tournament is not waiting to start")
        if len(self.entries) < 2:
            raise TournamentRuleError("at least two entries are needed to start")
        seats = self.config.seats_per_table
        out: list[Instruction] = []
        self.status = "running"
        ids = list(self.entries)
        self.rng.shuffle(ids)
        count = math.ceil(len(ids) / seats)
        tables = [self._open_table(out) for _ in range(count)]
        per_table: list[list[int]] = [[] for _ in tables]
        for i, entry_id in enumerate(ids):
            per_table[i % count].append(entry_id)
        for table, members in zip(tables, per_table, strict=True):
            old = table.key()
            for entry_id, seat in zip(members, self.rng.sample(range(seats), len(members)), strict=True):
                self._seat(self.entries[entry_id], table, seat)
                out.append(self._seat_instruction(self.entries[entry_id], "random draw [7]"))
            self._rekey(table, old)
        self.remaining = len(ids)
        out.append(TournamentStarted(entries=len(ids), tables=count))
        out.append(self._level_instruction())
        for table in tables:
            self._first_positions(table)
            table.in_hand = True
        self._refresh_payouts()
        if self.config.late_reg_until_level < 1:
            self._close_registration(out)
            if self.remaining <= self._seats_awarded():
                # A satellite whose pool buys a seat for everyone is over before the first hand.
                self._finish(out)
                return out
        self._check_hand_for_hand(out)
        return out

    def cancel(self) -> list[Instruction]:
        if self.status in ("finished", "cancelled"):
            raise TournamentRuleError("the tournament is already over")
        self.status = "cancelled"
        return []

    # ------------------------------------------------------------------ hands

    def hand_finished(
        self,
        table_id: int,
        stacks: Mapping[int, int],
        *,
        knockouts: Mapping[int, Sequence[int]] | None = None,
        rebuys: Iterable[int] = (),
    ) -> list[Instruction]:
        """Table ``table_id`` finished a hand; ``stacks`` are every seated entry's chips after it."""
        if self.status != "running":
            raise TournamentRuleError("the tournament is not running")
        table = self.tables.get(table_id)
        if table is None:
            raise TournamentRuleError(f"no table {table_id}")
        if not table.in_hand:
            raise TournamentRuleError(f"table {table_id} is not playing a hand")
        entries = self.entries
        seated = [e for e in table.seats if e is not None]
        if len(stacks) != len(seated) or any(e not in stacks for e in seated):
            raise TournamentRuleError("the stacks must name exactly the players seated at the table")
        if sum(stacks.values()) != sum(entries[e].stack for e in seated) or min(stacks.values()) < 0:
            raise TournamentRuleError("chips must be conserved within a hand")
        knockouts = knockouts or {}
        for busted, hunters in knockouts.items():
            if stacks.get(busted, -1) != 0 or any(stacks.get(h, 0) <= 0 for h in hunters):
                raise TournamentRuleError("a knockout names a player busted in this hand and live players of the table")
        out: list[Instruction] = []
        table.in_hand = False
        self.hands += 1
        rebuying = set(rebuys)
        bought = set(self.pending_rebuys).intersection(seated)
        busts: list[Entry] = []
        for entry_id in seated:
            entry = entries[entry_id]
            entry.hand_start = entry.stack
            entry.stack = stacks[entry_id]
            if entry_id in rebuying:
                self._rebuy(entry, out)
            if entry_id in bought:
                # Paid and checked when it was bought: the chips arrive between hands, never mid-hand.
                entry.stack += self.config.rebuy_chips
                out.append(SetStack(entry.id, entry.table, entry.seat, entry.stack, "rebuy"))
            if entry.stack == 0:
                busts.append(entry)
        if bought:
            self.pending_rebuys = [e for e in self.pending_rebuys if e not in bought]
        pending = self.pending_undo
        if pending is not None and entries[pending["from_entry"]].table == table.id:
            self.pending_undo = None
            try:
                self._check_undo_bust(pending)
            except TournamentRuleError as exc:
                self._log("undo-dropped", pending["entry"], str(exc))
            else:
                # Before this hand's busts are placed: the player busted earlier than they did.
                self._undo_bust(pending, out)
        for entry_id in [e for e in table.outgoing if entries[e].stack > 0]:
            self._execute_move(entries[entry_id], out)
        if busts:
            self._bust(table, busts, knockouts, seated, out)
        if table.breaking:
            self._close_if_empty(table, out)
        self._after_change(out, table)
        if self.status == "running":
            if table.id in self.tables and not table.in_hand and table.held is None:
                self._after_hand(table, out)
            else:
                # Gone, or already held or dealt again by a synchronized step that this hand completed.
                self._check_barrier(out)
        return out

    def _after_hand(self, table: Table, out: list[Instruction]) -> None:
        """Deal the next hand at ``table``, or hold it (barrier, or 3 or more short [11D])."""
        if self.barrier is not None:
            self._hold(table, "hand-for-hand" if self.barrier == "h4h" else self.barrier, out)
            self._check_barrier(out)
        elif table.n < 2:
            self._hold(table, WAITING, out)
        elif self._three_short_stop(table):
            self._hold(table, SHORT, out)
        else:
            self._deal(table)

    def _maybe_release(self, table: Table, out: list[Instruction]) -> None:
        """A table held for players deals again once it has two and its next hand no longer waits for
        them under the 3-short rule [11D]."""
        if (
            table.held in (WAITING, SHORT)
            and self.barrier is None
            and table.n >= 2
            and not self._three_short_stop(table)
        ):
            self._release(table, out)

    def _three_short_stop(self, table: Table) -> bool:
        """[11D] "Play at a table 3 or more players short of the largest table stops once its blinds are
        affected, until it is balanced." The balance is planned at once (players are on their way); the
        short table deals on while its next hand has the very blinds it would have with them seated, and
        stops before the first hand whose big blind would pass a seat kept for one of them (or, heads-up,
        with the heads-up blinds). It deals again once they sit down or it is no longer 3 short."""
        if not table.reserved or self._longest_physical() - table.n < 3:
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

    # ------------------------------------------------------------------ clock

    def tick(self, now_ms: int) -> list[Instruction]:
        """The clock: levels end, breaks start (synchronized) and end."""
        if now_ms < self.now_ms:
            raise TournamentRuleError("the clock cannot go backwards")
        elapsed = now_ms - self.now_ms
        self.now_ms = now_ms
        out: list[Instruction] = []
        if self.status != "running":
            return out
        if self.break_ends_ms is not None:
            if self.clock_paused:
                # The director's pause stops the break's clock too: nobody is dealt in while paused.
                self.break_ends_ms += elapsed
            elif now_ms >= self.break_ends_ms:
                self._end_break(out)
            return out
        if self.clock_paused or self.break_due:
            return out
        self.level_elapsed_ms += elapsed
        while self.level_elapsed_ms >= self.config.structure.level(self.level).duration_s * 1000:
            self.level_elapsed_ms -= self.config.structure.level(self.level).duration_s * 1000
            brk = self.config.structure.break_after(self.level)
            if brk is not None:
                self.level_elapsed_ms = 0
                self.break_due = True
                self._log("break-due", self.level)
                if self.barrier is None:
                    self._set_barrier("break", out)
                break
            self._next_level(out)
        return out

    def next_clock_event_ms(self) -> int | None:
        """When ``tick`` next changes more than the clock's own counters: the end of the level (a new
        level, or a break falling due) or of the running break. None while nothing can fall due on the
        clock: not running, paused, or a break due but waiting for the tables (the barrier, not the clock).

        Pure. A tick before this time only adds the time elapsed (to the level, or to a paused break's
        end), and the next tick adds the rest: skipping it leaves the same state as making it.
        """
        if self.status != "running":
            return None
        if self.break_ends_ms is not None:
            return None if self.clock_paused else self.break_ends_ms
        if self.clock_paused or self.break_due:
            return None
        duration_ms = self.config.structure.level(self.level).duration_s * 1000
        return self.now_ms + max(0, duration_ms - self.level_elapsed_ms)

    def _next_level(self, out: list[Instruction]) -> None:
        self.level += 1
        out.append(self._level_instruction())
        if self.registration_open and self.level > self.config.late_reg_until_level:
            self._close_registration(out)

    def _level_instruction(self) -> NewLevel:
        level = self.config.structure.level(self.level)
        return NewLevel(
            self.level, level.small_blind, level.big_blind, level.ante, level.big_blind_ante, level.duration_s
        )

    def _end_break(self, out: list[Instruction]) -> None:
        self.break_ends_ms = None
        self.break_due = False
        out.append(EndBreak())
        self._next_level(out)
        self.barrier = None
        self._resume_all(out)
        self._resume_pending_barrier(out)

    def clock(self, now_ms: int | None = None) -> dict[str, Any]:
        """The clock as the lobby shows it, at ``now_ms`` if given (the engine's time otherwise).

        A read: idle clock ticks are not facts (``next_clock_event_ms``), so the engine's own time may
        lag; the time since is projected here (up to the next clock event, which a tick makes)."""
        elapsed = 0
        if now_ms is not None and now_ms > self.now_ms and self.status == "running":
            due = self.next_clock_event_ms()
            elapsed = min(now_ms, due if due is not None else now_ms) - self.now_ms
        level = self.config.structure.level(self.level)
        level_running = self.status == "running" and not (
            self.clock_paused or self.break_due or self.break_ends_ms is not None
        )
        level_elapsed_ms = self.level_elapsed_ms + (elapsed if level_running else 0)
        break_remaining_ms = 0
        if self.break_ends_ms is not None:
            # A paused break's end moves with the time, so its remaining time stands still.
            break_remaining_ms = self.break_ends_ms - self.now_ms - (0 if self.clock_paused else elapsed)
        return {
            "level": self.level,
            "small_blind": level.small_blind,
            "big_blind": level.big_blind,
            "ante": level.ante,
            "big_blind_ante": level.big_blind_ante,
            "remaining_s": max(0, level.duration_s - level_elapsed_ms // 1000),
            "paused": self.clock_paused,
            "on_break": self.break_ends_ms is not None,
            "break_remaining_s": max(0, break_remaining_ms // 1000),
            "hand_for_hand": self.hand_for_hand,
        }

    # ------------------------------------------------------------------ director

    def pause(self) -> list[Instruction]:
        """The director pauses: the clock stops and every table finishes its hand and waits."""
        out: list[Instruction] = []
        if self.status != "running" or self.clock_paused:
            raise TournamentRuleError("the tournament is not running or already paused")
        self.clock_paused = True
        self._log("pause")
        if self.barrier is None:
            self._set_barrier("pause", out)
        return out

    def resume(self) -> list[Instruction]:
        out: list[Instruction] = []
        if not self.clock_paused:
            raise TournamentRuleError("the tournament is not paused")
        self.clock_paused = False
        self._log("resume")
        if self.barrier == "pause":
            self.barrier = None
            self._resume_all(out)
            self._resume_pending_barrier(out)
        return out

    def lock_seat(self, entry_id: int, locked: bool = True) -> None:
        """A locked seat is never chosen for a balancing move (a broken table still moves it)."""
        entry = self._entry(entry_id)
        entry.locked = locked
        table = self.tables.get(entry.table)
        if table is not None and not entry.busted:
            self._refresh_mover(table)
        self._log("lock", entry_id, int(locked))

    def set_tolerance(self, tolerance: int) -> list[Instruction]:
        if tolerance < 1:
            raise TournamentRuleError("the balancing tolerance is at least 1")
        self.tolerance = tolerance
        self._log("tolerance", tolerance)
        out: list[Instruction] = []
        if self.status == "running":
            self._balance(out, None)
        return out

    def purchase_refusal(self, kind: str, entry_id: int) -> str | None:
        """Why ``entry_id`` cannot buy a rebuy or the add-on now, or None (asked before any money is
        taken; changes nothing). ``buy_rebuy`` and ``addon`` refuse for exactly these reasons."""
        entry = self._entry(entry_id)
        config = self.config
        if kind == "rebuy":
            if self.status != "running" or entry.busted or entry_id in self.pending_rebuys:
                return f"entry {entry_id} cannot rebuy now"
            if self.level > config.rebuy_until_level or config.rebuy_chips <= 0 or entry.stack > config.starting_stack:
                return f"entry {entry_id} cannot rebuy now"
        elif kind == "addon":
            level = config.addon_level()
            if config.addon_chips <= 0 or level is None:
                return "this tournament has no add-on"
            if self.status != "running" or self.break_ends_ms is None or self.level != level:
                return f"an add-on is possible only during the break after level {level}"
            if entry.addon or entry.busted:
                return f"entry {entry_id} already took its add-on or is out"
        else:
            raise ValueError(f"not a purchase: {kind}")
        if self.prizes_paid:
            return "prizes are already being paid"
        if self._would_pay_a_decided_place(config.price(kind).prize_pool):
            return "the prize pool can no longer grow: places it would pay are decided"
        return None

    def buy_rebuy(self, entry_id: int) -> list[Instruction]:
        """A player buys a rebuy during a hand: it is checked and counted in the pool now, and its chips
        are added when the player's table reports the hand (before busts, so it saves a player who busts)."""
        refusal = self.purchase_refusal("rebuy", entry_id)
        if refusal is not None:
            raise TournamentRuleError(refusal)
        entry = self.entries[entry_id]
        self.pending_rebuys.append(entry_id)
        self._count_rebuy(entry)
        return []

    def _count_rebuy(self, entry: Entry) -> None:
        """A rebuy is paid like an entry (``config.price("rebuy")``): its prize-pool part grows the pool
        and, in a PKO event, its bounty part grows the buyer's own bounty, as the entry's did."""
        bounty = self.config.price("rebuy").bounty
        entry.bounty += bounty
        self.rebuy_bounties += bounty
        self.rebuys += 1
        self._refresh_payouts()

    @property
    def pool_collected(self) -> int:
        """The prize-pool parts paid in (entries, rebuys, add-ons): the pool without the guarantee's overlay."""
        config = self.config
        return (
            len(self.entries) * config.price("entry").prize_pool
            + self.rebuys * config.price("rebuy").prize_pool
            + self.addons * config.price("addon").prize_pool
        )

    @property
    def pool_held(self) -> int:
        """What the pool account must hold by the facts: the prize pool (overlay included) and the bounty
        parts paid in, less every prize and bounty awarded."""
        return self.prize_pool + self.bounties_collected - self.prizes_paid - self.bounties_paid

    @property
    def bounties_collected(self) -> int:
        """Every PKO bounty part paid in (entries and rebuys): what the bounties pay out, in the end, exactly."""
        return len(self.entries) * self.config.bounty + self.rebuy_bounties

    def addon(self, entry_id: int) -> list[Instruction]:
        """One add-on per entry, during the add-on break: the first break after the rebuy period
        (``config.addon_level()``), while every table is held."""
        refusal = self.purchase_refusal("addon", entry_id)
        if refusal is not None:
            raise TournamentRuleError(refusal)
        entry = self.entries[entry_id]
        entry.addon = True
        entry.stack += self.config.addon_chips
        self.addons += 1
        self._refresh_payouts()
        return [SetStack(entry.id, entry.table, entry.seat, entry.stack, "add-on")]

    def undo(self, what: str, *, stack: int | None = None, from_entry: int | None = None) -> list[Instruction]:
        """Undo the last move, or the last bust-out of a single player (``what="bust"``).

        Chips are never created: the player returns with ``stack`` chips taken back from ``from_entry``,
        a live player of the table where the bust happened (the one who won them). Both changes happen
        when that table is between hands: now if it is, else when it reports its current hand."""
        out: list[Instruction] = []
        if what == "move":
            if self.last_move is None:
                raise TournamentRuleError("no move to undo")
            self._undo_move(self.last_move, out)
            self.last_move = None
            return out
        if what != "bust":
            raise TournamentRuleError(f"cannot undo {what!r}: only a bust or a move")
        action = self.last_bust
        if action is None:
            raise TournamentRuleError("no single bust-out to undo")
        if self.pending_undo is not None:
            raise TournamentRuleError("an undo is already waiting for its table's hand to end")
        if stack is None or stack <= 0 or from_entry is None:
            raise TournamentRuleError("undoing a bust-out needs the chips to restore and the entry they come from")
        undo = {**action, "stack": stack, "from_entry": from_entry}
        self._check_undo_bust(undo)
        giver = self.entries[from_entry]
        self.last_bust = None
        if self.tables[giver.table].in_hand:
            self.pending_undo = undo
            self._log("undo-bust-pending", action["entry"], giver.table)
        else:
            self._undo_bust(undo, out)
            self._after_change(out, None)
        return out

    def _check_undo_bust(self, undo: Mapping[str, Any]) -> None:
        entry = self._entry(undo["entry"])
        giver = self.entries.get(undo["from_entry"])
        if self.status != "running" or not entry.busted or entry.prize:
            raise TournamentRuleError("only an unpaid bust-out of a running tournament can be undone")
        if self.config.bounty:
            raise TournamentRuleError("a bust-out that paid a bounty cannot be undone")
        if any(not self.entries[e].busted for e in self.by_player[entry.player]):
            raise TournamentRuleError("the player has re-entered: the bust-out stands")
        if entry.place == 0 and [entry.id] not in self.unplaced:
            raise TournamentRuleError("the bust-out is placed when the hand-for-hand hand ends: undo it then")
        if giver is None or giver.busted or giver.table != undo["table"] or giver.stack <= undo["stack"]:
            raise TournamentRuleError(
                "the chips must come from a live player of that table who keeps at least one chip"
            )
        if entry.place and any(e.prize for e in self._placed_after(entry)):
            raise TournamentRuleError("players placed after this bust-out were already paid")

    def _placed_after(self, entry: Entry) -> list[Entry]:
        """Entries given a better place than ``entry`` since it busted (places are given from the bottom)."""
        best = len(self.entries) - self.placed + 1
        return [e for e in self.entries.values() if best <= e.place < entry.place]

    def _undo_bust(self, undo: Mapping[str, Any], out: list[Instruction]) -> None:
        entry, giver = self.entries[undo["entry"]], self.entries[undo["from_entry"]]
        # First, so that whoever learnt of the bust-out learns of its undo before the places re-announced.
        out.append(EliminationUndone(entry.id, entry.player, undo["table"], entry.place, entry.place_to))
        if entry.place:
            # Everyone placed since finished before this player now: one place worse each.
            for later in self._placed_after(entry):
                later.place += 1
                later.place_to += 1
                out.append(
                    EliminatePlayer(
                        later.id,
                        later.player,
                        later.table,
                        later.place,
                        later.place_to,
                        f"place corrected: director undid the bust-out of entry {entry.id}",
                    )
                )
            self.placed -= 1
        else:
            self.unplaced.remove([entry.id])
        entry.busted = False
        entry.place = entry.place_to = 0
        giver.stack -= undo["stack"]
        entry.stack = entry.hand_start = undo["stack"]
        self.remaining += 1
        out.append(SetStack(giver.id, giver.table, giver.seat, giver.stack, f"chips back to entry {entry.id}"))
        table = self.tables[giver.table]
        if undo["seat"] in table.free_seats() and not table.breaking:
            seat = undo["seat"]
        else:
            if not table.free_seats() or table.breaking:
                table = self._shortest_with_seat(out, allow_open=True)
            seat = self._worst_seat(table)
        old = table.key()
        self._seat(entry, table, seat)
        self._rekey(table, old)
        self._log("undo-bust", entry.id, table.id, seat, giver.id, undo["stack"])
        out.append(self._seat_instruction(entry, "director undid the bust-out"))
        if not table.in_hand and table.held is None and table.n < 2:
            self._hold(table, WAITING, out)
        self._maybe_release(table, out)

    def _undo_move(self, action: dict[str, Any], out: list[Instruction]) -> None:
        entry = self._entry(action["entry"])
        source = self.tables.get(entry.table)
        back = self.tables.get(action["from_table"])
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
        self._plan_move(entry, source, back, action["from_seat"], out, "undo-move")
        self._balance(out, None)

    # ------------------------------------------------------------------ views

    def table_view(self, table_id: int) -> dict[str, Any]:
        table = self.tables[table_id]
        return {
            "table": table.id,
            "button": table.button,
            "small_blind_seat": table.sb,
            "big_blind_seat": table.bb,
            "held": table.held,
            "breaking": table.breaking,
            "seats": [
                None
                if entry is None
                else {"entry": entry, "player": self.entries[entry].player, "stack": self.entries[entry].stack}
                for entry in table.seats
            ],
        }

    def standings(self) -> list[dict[str, Any]]:
        """Live entries by stack, then finished ones by place."""
        live = sorted(
            (e for e in self.entries.values() if not e.busted and not e.place), key=lambda e: (-e.stack, e.id)
        )
        done = sorted((e for e in self.entries.values() if e.place), key=lambda e: (e.place, e.id))
        rows = [{"entry": e.id, "player": e.player, "stack": e.stack, "table": e.table, "place": None} for e in live]
        rows += [{"entry": e.id, "player": e.player, "place": e.place, "prize": e.prize} for e in done if e.place]
        return rows

    def deal_offer(self, method: str) -> list[dict[str, Any]]:
        """What an ICM (Malmuth-Harville) or chip-chop deal gives each live entry, from the prizes of the
        places still to be decided; the amounts sum exactly to those prizes. Offered to the director."""
        if self.status != "running":
            raise TournamentRuleError("a deal is offered only while the tournament runs")
        live = sorted((e for e in self.entries.values() if not e.busted), key=lambda e: (-e.stack, e.id))
        prizes = self.payouts[: len(live)]
        stacks = [e.stack for e in live]
        match method:
            case "icm":
                amounts = pay.icm_deal(stacks, prizes)
            case "chip-chop":
                amounts = pay.chip_chop_deal(stacks, prizes)
            case _:
                raise TournamentRuleError(f"unknown deal {method!r}: icm or chip-chop")
        return [
            {"entry": e.id, "player": e.player, "stack": e.stack, "amount": amount}
            for e, amount in zip(live, amounts, strict=True)
        ]

    def places(self) -> list[tuple[int, int]]:
        return [(e.id, e.place) for e in self.entries.values() if e.place]

    # ------------------------------------------------------------------ internals: seats and tables

    def _entry(self, entry_id: int) -> Entry:
        entry = self.entries.get(entry_id)
        if entry is None:
            raise TournamentRuleError(f"no entry {entry_id}")
        return entry

    def _open_table(self, out: list[Instruction]) -> Table:
        table = Table(self.next_table, self.config.seats_per_table, self.rng.getrandbits(31))
        self.next_table += 1
        self.tables[table.id] = table
        self.by_count[0] += 1
        self.order.add(table.key())
        self.numbers.add(table.id)
        out.append(OpenTable(table.id))
        return table

    def _rekey(self, table: Table, old: Key) -> None:
        if not table.breaking:
            self.order.remove(old)
            self.order.add(table.key())
        self._refresh_mover(table)

    def _refresh_mover(self, table: Table) -> None:
        """Re-index the player ``table`` would send [11A] after anything that can change who that is or
        how long the table is: its seats, its big blind, a planned move, a seat lock, a player's moves."""
        new: MoverKey | None = None
        if not table.breaking and table.id in self.tables:
            entry = self._due_big_blind(table)
            if entry is not None:
                new = (table.n - len(table.outgoing) + len(table.reserved), -entry.moves, table.rank, table.id)
        if new != table.mover:
            if table.mover is not None:
                self.movers.remove(table.mover)
            if new is not None:
                self.movers.add(new)
            table.mover = new

    def _seat(self, entry: Entry, table: Table, seat: int) -> None:
        table.seats[seat] = entry.id
        self.by_count[table.n] -= 1
        table.n += 1
        self.by_count[table.n] += 1
        entry.table = table.id
        entry.seat = seat

    def _unseat(self, entry: Entry, table: Table) -> None:
        table.seats[entry.seat] = None
        self.by_count[table.n] -= 1
        table.n -= 1
        self.by_count[table.n] += 1

    def _seat_instruction(self, entry: Entry, reason: str) -> SeatPlayer:
        return SeatPlayer(entry.id, entry.player, entry.table, entry.seat, entry.stack, reason)

    def _late_seat(self, entry: Entry, out: list[Instruction]) -> None:
        """Late entries and re-entries draw an open seat [8, 10A] at a shortest table (a new one if all are full)."""
        table = self._shortest_with_seat(out, allow_open=True)
        seat = self.rng.choice(table.free_seats())
        old = table.key()
        self._seat(entry, table, seat)
        self._rekey(table, old)
        out.append(self._seat_instruction(entry, "late registration: random open seat [8]"))
        if not table.in_hand and table.held is None and table.n < 2:
            self._hold(table, WAITING, out)
        self._maybe_release(table, out)

    def _shortest_with_seat(self, out: list[Instruction], *, allow_open: bool = False) -> Table:
        """A shortest table with a physically open seat. A table can be full while one of its players
        waits to leave; then that pending move is withdrawn and the seat it reserved is used instead."""
        seats = self.config.seats_per_table
        withdraw: Table | None = None
        for key in self.order:
            if key[0] >= seats:
                break
            table = self.tables[key[2]]
            if table.free_seats():
                return table
            if withdraw is None and table.outgoing:
                withdraw = table
        if withdraw is not None:
            entry_id = next(iter(withdraw.outgoing))
            to_table = withdraw.outgoing[entry_id][0]
            self._cancel_move(self.entries[entry_id], withdraw, out, "move-withdrawn")
            return self.tables[to_table]
        if allow_open:
            return self._open_table(out)
        raise TournamentRuleError("no open seat")

    def _longest_physical(self) -> int:
        for count in range(len(self.by_count) - 1, -1, -1):
            if self.by_count[count]:
                return count
        return 0

    def _worst_seat(self, table: Table, *, arrives_now: bool = True) -> int:
        """The seat that would be big blind next, or the one after it (never the small blind) [11A].

        "Next" is the first hand the mover plays there: the one after the hand in progress, or, when
        the table is about to deal and the mover arrives only later, the one after that."""
        if table.bb < 0:
            return self.rng.choice(table.free_seats())
        reference = table.bb
        if not arrives_now and not table.in_hand and table.held is None and table.n:
            reference = table.next_occupied(table.bb)
        size = len(table.seats)
        for step in range(1, size + 1):
            seat = (reference + step) % size
            if table.seats[seat] is None and seat not in table.reserved:
                return seat
        raise TournamentRuleError(f"table {table.id} has no open seat")

    def _first_positions(self, table: Table) -> None:
        """Button drawn at random; blinds follow it."""
        occupied = [s for s, e in enumerate(table.seats) if e is not None]
        if not occupied:
            return
        table.button = self.rng.choice(occupied)
        if table.n == 2:
            table.sb = table.button
            table.bb = table.next_occupied(table.button)
        else:
            table.sb = table.next_occupied(table.button)
            table.bb = table.next_occupied(table.sb)
        self._refresh_mover(table)

    def _deal(self, table: Table) -> None:
        """Dead-button rule [32]: the big blind moves to the next player; the small blind and the button
        take the previous big blind's and small blind's seats, even if empty. Heads-up the small blind
        has the button [34B]."""
        table.in_hand = True
        if table.bb < 0:
            self._first_positions(table)
            return
        previous_bb, previous_sb = table.bb, table.sb
        table.bb = table.next_occupied(previous_bb)
        if table.n == 2:
            table.sb = table.button = table.next_occupied(table.bb)
        else:
            table.sb = previous_bb
            table.button = previous_sb
        self._refresh_mover(table)

    def _hold(self, table: Table, reason: str, out: list[Instruction]) -> None:
        if table.held is None:
            table.held = reason
            self.held += 1
            out.append(HoldTable(table.id, reason))

    def _release(self, table: Table, out: list[Instruction]) -> None:
        if table.held is not None:
            table.held = None
            self.held -= 1
        self._deal(table)
        out.append(ResumeTable(table.id))

    def _resume_all(self, out: list[Instruction]) -> None:
        for table in self.tables.values():
            if table.held is not None and not table.in_hand:
                if table.n < 2:
                    table.held = WAITING
                elif self._three_short_stop(table):
                    # Still waiting for its players [11D]: it stays held, now for that reason.
                    table.held = SHORT
                    out.append(HoldTable(table.id, SHORT))
                else:
                    self._release(table, out)

    # ------------------------------------------------------------------ moves, balancing, breaking

    def _plan_move(
        self, entry: Entry, source: Table, dest: Table, seat: int, out: list[Instruction], kind: str, *why: int
    ) -> None:
        old_dest = dest.key()
        old_source = source.key()
        dest.reserved[seat] = entry.id
        source.outgoing[entry.id] = (dest.id, seat)
        self._rekey(dest, old_dest)
        self._rekey(source, old_source)
        self._log(kind, entry.id, source.id, entry.seat, dest.id, seat, *why)
        if not source.in_hand:
            self._execute_move(entry, out)

    def _execute_move(self, entry: Entry, out: list[Instruction]) -> None:
        source = self.tables[entry.table]
        to_table, to_seat = source.outgoing.pop(entry.id)
        dest = self.tables[to_table]
        del dest.reserved[to_seat]
        if entry.id in self.fixed_seats:
            self.fixed_seats.discard(entry.id)
            entry.moves -= 1  # going back to where a mistaken move took it is no move of its own
        elif not source.breaking and dest.bb >= 0:
            # The destination may have dealt since the move was planned: the worst position [11A] is
            # taken from where its big blind is now, not where it was.
            worst = self._worst_seat(dest)
            if worst != to_seat:
                self._log("reseat", entry.id, dest.id, worst, to_seat)
                to_seat = worst
        from_seat = entry.seat
        self._unseat(entry, source)
        self._seat(entry, dest, to_seat)
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
            self._first_positions(dest)
        # Neither table's effective count changed, but who each would send next did.
        self._refresh_mover(dest)
        self._refresh_mover(source)
        self._maybe_release(dest, out)
        if source.breaking:
            self._close_if_empty(source, out)

    def _cancel_move(self, entry: Entry, source: Table, out: list[Instruction], kind: str = "move-cancelled") -> None:
        to_table, to_seat = source.outgoing.pop(entry.id)
        self.fixed_seats.discard(entry.id)
        dest = self.tables[to_table]
        old_dest, old_source = dest.key(), source.key()
        del dest.reserved[to_seat]
        self._rekey(dest, old_dest)
        if entry.stack > 0:
            # Withdrawn, not busted: the player stays, so the source counts them again.
            source.outgoing[entry.id] = (to_table, to_seat)
            old_source = source.key()
            del source.outgoing[entry.id]
            self._rekey(source, old_source)
        self._log(kind, entry.id, source.id, to_table)
        self._maybe_release(dest, out)

    def _close_if_empty(self, table: Table, out: list[Instruction]) -> None:
        if table.n == 0 and not table.reserved and table.id in self.tables:
            del self.tables[table.id]
            self.by_count[0] -= 1
            if table.held is not None:
                self.held -= 1
            out.append(BreakTable(table.id))

    def _break_tables(self, out: list[Instruction]) -> None:
        """Break a table as soon as the players left fit in one fewer table, by the fixed order."""
        seats = self.config.seats_per_table
        while len(self.order) > 1 and self.remaining <= (len(self.order) - 1) * seats:
            match self.config.break_order:
                case "highest":
                    table_id = self.numbers.last()
                case "lowest":
                    table_id = self.numbers.first()
                case _:
                    table_id = self.numbers[self.rng.randrange(len(self.numbers))]
            table = self.tables[table_id]
            self.order.remove(table.key())
            self.numbers.remove(table_id)
            table.breaking = True
            self._refresh_mover(table)
            self._log("break-table", table_id, self.remaining, len(self.order), self.config.break_order)
            for seat, entry_id in list(table.reserved.items()):
                # A player on the way here stays where they are (balancing runs next), unless their own
                # table is breaking too; then they go to a shortest table instead.
                entry = self.entries[entry_id]
                source = self.tables[entry.table]
                old = source.key()
                del table.reserved[seat]
                del source.outgoing[entry_id]
                self._rekey(source, old)
                if source.breaking:
                    dest = self._shortest_with_seat(out)
                    self._plan_move(entry, source, dest, self.rng.choice(dest.free_seats()), out, "redirect")
                else:
                    self._log("move-withdrawn", entry_id, source.id, table_id)
            movers = [e for e in table.seats if e is not None and e not in table.outgoing]
            self.rng.shuffle(movers)
            for entry_id in movers:
                entry = self.entries[entry_id]
                dest = self._shortest_with_seat(out)
                free = dest.free_seats()
                if entry.seat == table.bb and len(free) > 1 and dest.bb >= 0:
                    # No big blind twice in a row because of a move [32]: not the seat next in line for it.
                    next_bb = self._worst_seat(dest)
                    free = [s for s in free if s != next_bb] or free
                seat = self.rng.choice(free)
                self._plan_move(entry, table, dest, seat, out, "broken")
            self._close_if_empty(table, out)

    def _balance(self, out: list[Instruction], reporting: Table | None) -> None:
        """Fewest moves: each move takes one player from a longest table to a shortest one."""
        order = self.order
        while len(order) > 1:
            low, high = order.first(), order.last()
            # Within tolerance, unless a table is left with one player while another can spare one.
            if high[0] - low[0] <= self.tolerance and not low[0] < 2 < high[0]:
                return
            dest = self.tables[low[2]]
            if dest.outgoing and self._withdraw_outgoing(dest, out):
                continue
            longest = self.tables[high[2]]
            if longest.reserved and dest.free_seats() and self._redirect_incoming(longest, dest):
                continue
            choice = self._pick_mover(high[0], reporting)
            if choice is None:
                self._log("balance-blocked")
                return
            source, entry = choice
            if not dest.free_seats():
                dest = self._shortest_with_seat(out)
            if dest is source:
                self._log("balance-blocked")
                return
            seat = self._worst_seat(dest, arrives_now=not source.in_hand)
            self._plan_move(entry, source, dest, seat, out, "balance", high[0], low[0], self.tolerance, entry.moves)

    def _redirect_incoming(self, long: Table, short: Table) -> bool:
        """Fewest moves: a player still on the way to a long table goes to the short one instead
        (not one the director sent back to their seat, nor one coming from the short table itself)."""
        found = next(
            (
                (seat, entry_id)
                for seat, entry_id in long.reserved.items()
                if entry_id not in self.fixed_seats and self.entries[entry_id].table != short.id
            ),
            None,
        )
        if found is None:
            return False
        seat, entry_id = found
        source = self.tables[self.entries[entry_id].table]
        old_long, old_short = long.key(), short.key()
        del long.reserved[seat]
        to_seat = self._worst_seat(short, arrives_now=not source.in_hand)
        short.reserved[to_seat] = entry_id
        source.outgoing[entry_id] = (short.id, to_seat)
        self._rekey(long, old_long)
        self._rekey(short, old_short)
        self._log("redirect", entry_id, source.id, self.entries[entry_id].seat, short.id, to_seat)
        return True

    def _withdraw_outgoing(self, short: Table, out: list[Instruction]) -> bool:
        """Fewest moves: a short table keeps a player it was about to send to a table that can spare it."""
        for entry_id, (to_table, _) in short.outgoing.items():
            if entry_id not in self.fixed_seats and self.tables[to_table].effective >= short.effective + 2:
                self._cancel_move(self.entries[entry_id], short, out, "move-withdrawn")
                return True
        return False

    def _pick_mover(self, longest: int, reporting: Table | None) -> tuple[Table, Entry] | None:
        """The player due the big blind next at a longest table [11A], over every longest table: the one
        moved least often ("never bouncing the same player twice when another choice exists"), then the
        table that just reported (its move happens at once), then the seeded rank [11C]. The movers index
        holds each table's candidate, so this is one lookup whatever the field."""
        if not self.movers:
            return None
        top = self.movers.last()
        if top[0] != longest:
            return None  # at every longest table the candidates are locked or already leaving
        table = self.tables[top[3]]
        if reporting is not None and reporting.mover is not None and reporting.mover[:2] == top[:2]:
            table = reporting
        entry = self._due_big_blind(table)
        return None if entry is None else (table, entry)

    def _due_big_blind(self, table: Table) -> Entry | None:
        size = len(table.seats)
        start = table.bb if table.bb >= 0 else 0
        for step in range(1, size + 1):
            entry_id = table.seats[(start + step) % size]
            if entry_id is None or entry_id in table.outgoing:
                continue
            entry = self.entries[entry_id]
            if not entry.locked:
                return entry
        return None

    # ------------------------------------------------------------------ eliminations and places

    def _bust(
        self,
        table: Table,
        busts: list[Entry],
        knockouts: Mapping[int, Sequence[int]],
        seated: list[int],
        out: list[Instruction],
    ) -> None:
        old = table.key()
        for entry in busts:
            if entry.id in table.outgoing:
                self._cancel_move(entry, table, out)
            self._unseat(entry, table)
            entry.busted = True
            self.remaining -= 1
            if self.config.bounty:
                hunters = knockouts.get(entry.id) or self._eliminators(entry, seated)
                self._pay_bounty(entry, hunters, out)
        self._rekey(table, old)
        self.last_bust = {"entry": busts[0].id, "table": table.id, "seat": busts[0].seat} if len(busts) == 1 else None
        if self.h4h_round:
            self.round_busts.extend((table.id, entry.id) for entry in busts)
            for entry in busts:
                self._log("h4h-bust", entry.id, table.id)
                out.append(
                    EliminatePlayer(entry.id, entry.player, table.id, 0, 0, "hand-for-hand: place set after the hand")
                )
            return
        # Same hand, same table: the bigger starting stack finishes higher; equal stacks tie.
        groups: dict[int, list[int]] = {}
        for entry in busts:
            groups.setdefault(entry.hand_start, []).append(entry.id)
        ordered = [sorted(groups[stack]) for stack in sorted(groups)]
        self._place_groups(ordered, table.id, out)

    def _place_groups(
        self, groups: list[list[int]], table_id: int, out: list[Instruction], *, eliminated: bool = True
    ) -> None:
        """Give places to bust groups listed worst first; each group ties over the places it covers."""
        total = len(self.entries)
        for group in groups:
            if self.registration_open:
                self.unplaced.append(group)
                for entry_id in group:
                    entry = self.entries[entry_id]
                    out.append(
                        EliminatePlayer(
                            entry_id, entry.player, table_id, 0, 0, "busted; place set when registration closes"
                        )
                    )
                continue
            last = total - self.placed
            first = last - len(group) + 1
            self.placed += len(group)
            tie = f"tied over places {first}-{last}" if len(group) > 1 else f"place {first}"
            for entry_id in group:
                entry = self.entries[entry_id]
                entry.place, entry.place_to = first, last
                if eliminated:
                    out.append(EliminatePlayer(entry_id, entry.player, table_id, first, last, tie))
                self._log("eliminate", entry_id, table_id, first, f" (tied to {last})" if last != first else "")
            self._award(group, first, last, out)

    def _award(self, group: list[int], first: int, last: int, out: list[Instruction]) -> None:
        if first > len(self.payouts):
            return
        for entry_id, amount in zip(
            sorted(group), pay.split_places(self.payouts, first, last, len(group)), strict=True
        ):
            if amount:
                entry = self.entries[entry_id]
                entry.prize += amount
                self.prizes_paid += amount
                out.append(AwardPrize(entry_id, entry.player, first, amount, "place"))

    def _eliminators(self, busted: Entry, seated: list[int]) -> list[int]:
        """When the table does not name who knocked a player out: the players of that table who won chips
        in the hand and covered the busted player (or, if none covered, every winner of chips). Someone
        always won chips, so a bounty is never left in the pool."""
        winners = [
            self.entries[e]
            for e in seated
            if self.entries[e].stack > self.entries[e].hand_start and not self.entries[e].busted
        ]
        covering = [e.id for e in winners if e.hand_start >= busted.hand_start]
        return covering or [e.id for e in winners]

    def _pay_bounty(self, entry: Entry, eliminators: Sequence[int], out: list[Instruction]) -> None:
        """PKO: half of the busted player's bounty in cash, half onto the eliminators' own bounties."""
        hunters = sorted(set(eliminators))
        if not hunters:
            raise TournamentRuleError(f"nobody at the table won the chips of entry {entry.id}")
        cash = entry.bounty // 2
        added = entry.bounty - cash
        entry.bounty = 0
        for hunter_id, won, grown in zip(
            hunters, pay.split_evenly(cash, len(hunters)), pay.split_evenly(added, len(hunters)), strict=True
        ):
            hunter = self.entries[hunter_id]
            hunter.bounty += grown
            if won:
                self.bounties_paid += won
                out.append(AwardPrize(hunter_id, hunter.player, 0, won, "bounty"))

    def _close_registration(self, out: list[Instruction]) -> None:
        self.registration_open = False
        self._refresh_payouts()
        self._log("registration", len(self.entries))
        groups, self.unplaced = self.unplaced, []
        self._place_groups(groups, 0, out)

    def _refresh_payouts(self) -> None:
        """The pool changed (an entry, a rebuy, an add-on): the payout table is cut again when next needed."""
        config = self.config
        self.prize_pool = pay.prize_pool(
            entries=len(self.entries),
            buy_in=config.price("entry").prize_pool,
            guarantee=config.guarantee,
            extra=self.rebuys * config.price("rebuy").prize_pool + self.addons * config.price("addon").prize_pool,
        ).total
        self._payouts = None

    @property
    def payouts(self) -> list[int]:
        """Amount per place (index 0: first place); sums exactly to the prize pool."""
        if self._payouts is None:
            config = self.config
            if config.format == "satellite":
                self._payouts = pay.satellite_table(self.prize_pool, config.satellite_seat_value, len(self.entries))
            else:
                self._payouts = pay.payout_table(self.prize_pool, len(self.entries), config.buy_in, config.payout)
        return self._payouts

    def _rebuy(self, entry: Entry, out: list[Instruction]) -> None:
        config = self.config
        if self.level > config.rebuy_until_level or config.rebuy_chips <= 0 or entry.stack > config.starting_stack:
            raise TournamentRuleError(f"entry {entry.id} cannot rebuy now")
        if self.prizes_paid:
            raise TournamentRuleError("prizes are already being paid")
        entry.stack += config.rebuy_chips
        self._count_rebuy(entry)
        out.append(SetStack(entry.id, entry.table, entry.seat, entry.stack, "rebuy"))

    def paid_places(self) -> int:
        return len(self.payouts)

    def _seats_awarded(self) -> int:
        if self.config.format != "satellite":
            return 1
        return max(1, min(self.prize_pool // self.config.satellite_seat_value, len(self.entries)))

    # ------------------------------------------------------------------ after every change

    def _after_change(self, out: list[Instruction], reporting: Table | None) -> None:
        if self.status != "running":
            return
        if self.registration_open and self.remaining <= 1:
            self._close_registration(out)
        if not self.h4h_round and self.remaining <= self._seats_awarded() and not self.registration_open:
            self._finish(out)
            return
        self._break_tables(out)
        self._balance(out, reporting)
        self._check_hand_for_hand(out)

    def _finish(self, out: list[Instruction]) -> None:
        live = sorted(e.id for e in self.entries.values() if not e.busted)
        self._place_groups([live], 0, out, eliminated=False)
        for entry_id in live:
            entry = self.entries[entry_id]
            if self.config.bounty and entry.bounty:
                # The winner keeps their own bounty.
                self.bounties_paid += entry.bounty
                out.append(AwardPrize(entry_id, entry.player, entry.place, entry.bounty, "bounty"))
                entry.bounty = 0
        self.winners = live
        self.status = "finished"
        self._log("finish")
        out.append(TournamentFinished(tuple(live)))

    def _check_hand_for_hand(self, out: list[Instruction]) -> None:
        """Hand-for-hand [RP-8] while the next elimination(s) decide who cashes."""
        if self.registration_open:
            return
        paid = self.paid_places() if self.config.format != "satellite" else self._seats_awarded()
        needed = paid > 0 and paid < self.remaining <= paid + self.config.hand_for_hand_margin and len(self.tables) > 1
        if needed and not self.hand_for_hand:
            self.hand_for_hand = True
            out.append(HandForHand(True))
            self._log("h4h-on", self.remaining, paid)
            if self.barrier is None:
                self._set_barrier("h4h", out)
        elif not needed and self.hand_for_hand and not self.h4h_round:
            self.hand_for_hand = False
            self.h4h_round = False
            out.append(HandForHand(False))
            self._log("h4h-off", self.remaining)
            if self.barrier == "h4h":
                self.barrier = None
                self._resume_all(out)
                self._resume_pending_barrier(out)

    def _set_barrier(self, barrier: str, out: list[Instruction]) -> None:
        self.barrier = barrier
        for table in self.tables.values():
            if not table.in_hand:
                self._hold(table, barrier, out)
        self._check_barrier(out)

    def _check_barrier(self, out: list[Instruction]) -> None:
        """Every table has finished its hand: the synchronized step happens now."""
        if self.barrier is None or self.held < len(self.tables):
            return
        if self.barrier == "break":
            if self.break_ends_ms is None:
                brk = self.config.structure.break_after(self.level)
                duration = brk.duration_s if brk else 0
                self.break_ends_ms = self.now_ms + duration * 1000
                out.append(StartBreak(self.level, duration))
                self._log("break-start", duration)
        elif self.barrier == "h4h":
            if self.h4h_round:
                self._resolve_round(out)
            if self.barrier != "h4h" or self.status != "running":
                return
            # Between two hand-for-hand hands a due break or a pause takes over.
            if self.break_due and self.break_ends_ms is None:
                self.barrier = "break"
                self._check_barrier(out)
            elif self.clock_paused:
                self.barrier = "pause"
            else:
                self.h4h_round = True
                self._resume_all(out)

    def _resume_pending_barrier(self, out: list[Instruction]) -> None:
        if self.break_due and self.break_ends_ms is None:
            self._set_barrier("break", out)
        elif self.clock_paused:
            self._set_barrier("pause", out)
        elif self.hand_for_hand:
            self._set_barrier("h4h", out)

    def _resolve_round(self, out: list[Instruction]) -> None:
        """Busts of one hand-for-hand hand: at one table ranked by starting stack; across tables they tie."""
        busts, self.round_busts = self.round_busts, []
        self.h4h_round = False
        if busts:
            tables = {table_id for table_id, _ in busts}
            if len(tables) == 1:
                by_stack: dict[int, list[int]] = {}
                for _, entry_id in busts:
                    by_stack.setdefault(self.entries[entry_id].hand_start, []).append(entry_id)
                groups = [sorted(by_stack[stack]) for stack in sorted(by_stack)]
            else:
                groups = [sorted(entry_id for _, entry_id in busts)]
            self._place_groups(groups, 0, out)
        self._after_change(out, None)

    # ------------------------------------------------------------------ log and state

    def _log(self, kind: str, *data: int | str) -> None:
        self.log.append([len(self.log) + 1, self.hands, kind, *data])

    def decisions(self, since: int = 0) -> list[dict[str, Any]]:
        return [describe(row) for row in self.log[since:]]

    def to_state(self) -> dict[str, Any]:
        version, internal, gauss = self.rng.getstate()
        return {
            "rules_version": RULES_VERSION,
            "config": self.config.to_dict(),
            "rng": [version, list(internal), gauss],
            "status": self.status,
            "entries": [entry.dump() for entry in self.entries.values()],
            "tables": [table.dump() for table in self.tables.values()],
            "next_table": self.next_table,
            "tolerance": self.tolerance,
            "placed": self.placed,
            "unplaced": self.unplaced,
            "registration_open": self.registration_open,
            "prize_pool": self.prize_pool,
            "payouts": self._payouts,
            "prizes_paid": self.prizes_paid,
            "bounties_paid": self.bounties_paid,
            "rebuy_bounties": self.rebuy_bounties,
            "rebuys": self.rebuys,
            "addons": self.addons,
            "pending_rebuys": self.pending_rebuys,
            "level": self.level,
            "level_elapsed_ms": self.level_elapsed_ms,
            "now_ms": self.now_ms,
            "clock_paused": self.clock_paused,
            "break_due": self.break_due,
            "break_ends_ms": self.break_ends_ms,
            "barrier": self.barrier,
            "hand_for_hand": self.hand_for_hand,
            "h4h_round": self.h4h_round,
            "round_busts": [list(b) for b in self.round_busts],
            "hands": self.hands,
            "moves": self.moves,
            "log": self.log,
            "last_bust": self.last_bust,
            "last_move": self.last_move,
            "pending_undo": self.pending_undo,
            "fixed_seats": sorted(self.fixed_seats),
            "winners": self.winners,
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Tournament:
        tournament = cls(TournamentConfig.from_dict(state["config"]))
        version, internal, gauss = state["rng"]
        tournament.rng.setstate((version, tuple(internal), gauss))
        for name in (
            "status",
            "next_table",
            "tolerance",
            "placed",
            "registration_open",
            "prizes_paid",
            "bounties_paid",
            "rebuys",
            "addons",
            "level",
            "level_elapsed_ms",
            "now_ms",
            "clock_paused",
            "break_due",
            "break_ends_ms",
            "barrier",
            "hand_for_hand",
            "h4h_round",
            "hands",
            "moves",
            "last_bust",
            "last_move",
            "pending_undo",
            "winners",
        ):
            setattr(tournament, name, state[name])
        tournament.unplaced = [list(group) for group in state["unplaced"]]
        tournament.round_busts = [(t, e) for t, e in state["round_busts"]]
        tournament.log = [list(row) for row in state["log"]]
        tournament.fixed_seats = set(state["fixed_seats"])
        tournament.pending_rebuys = list(state.get("pending_rebuys", ()))
        # States saved before rebuys carried a bounty part: none of their rebuys added one.
        tournament.rebuy_bounties = state.get("rebuy_bounties", 0)
        for row in state["entries"]:
            entry = Entry.load(row)
            tournament.entries[entry.id] = entry
            tournament.by_player.setdefault(entry.player, []).append(entry.id)
        for data in state["tables"]:
            table = Table.load(data)
            tournament.tables[table.id] = table
            tournament.by_count[table.n] += 1
            if not table.breaking:
                tournament.order.add(table.key())
                tournament.numbers.add(table.id)
            if table.held is not None:
                tournament.held += 1
        for table in tournament.tables.values():
            tournament._refresh_mover(table)  # derived: rebuilt from the seats, never stored
        tournament.remaining = sum(1 for e in tournament.entries.values() if not e.busted)
        tournament.prize_pool = state["prize_pool"]
        tournament._payouts = state["payouts"]
        return tournament
