"""The clock (TOURNAMENT.md "Levels, clock and breaks", hand-for-hand [RP-8]): levels [23], synchronized
breaks, the director's pause, hand-for-hand, and which table deals next or holds.

A break, a pause and hand-for-hand are *barriers*: each table finishing its hand holds; when every table
holds, the synchronized step happens (the break starts, or the next hand-for-hand hand is dealt
everywhere). A level's time runs only while not paused and not on a break.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from tablium_event.domain.colour_up import chip_race, smallest_chip
from tablium_event.domain.config import TournamentRuleError
from tablium_event.domain.field import SHORT, WAITING, Table
from tablium_event.domain.instructions import (
    EndBreak,
    HandForHand,
    HoldTable,
    Instruction,
    NewLevel,
    ResumeTable,
    SetStack,
    StartBreak,
)

if TYPE_CHECKING:
    from tablium_event.domain.engine import Tournament

STATE = (
    "level",
    "level_elapsed_ms",
    "now_ms",
    "clock_paused",
    "break_due",
    "break_ends_ms",
    "barrier",
    "hand_for_hand",
    "h4h_round",
)


class Clock:
    """Levels, breaks, pauses and hand-for-hand: the barriers every table waits at."""

    __slots__ = ("t", "held", *STATE)

    def __init__(self, tournament: Tournament) -> None:
        self.t = tournament
        self.level = 1
        self.level_elapsed_ms = 0
        self.now_ms = 0
        self.clock_paused = False
        self.break_due = False
        self.break_ends_ms: int | None = None
        self.barrier: str | None = None  # break | h4h | pause
        self.hand_for_hand = False
        self.h4h_round = False  # a hand-for-hand hand is being played everywhere
        self.held = 0  # tables held (derived: counted from the tables on load)

    def dump(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in STATE}

    def load(self, state: Mapping[str, Any]) -> None:
        for name in STATE:
            setattr(self, name, state[name])
        self.held = sum(1 for table in self.t.tables.values() if table.held is not None)

    def after_hand(self, table: Table, out: list[Instruction]) -> None:
        """Deal the next hand at ``table``, or hold it (barrier, or 3 or more short [11D])."""
        t = self.t
        if self.barrier is not None:
            self.hold(table, "hand-for-hand" if self.barrier == "h4h" else self.barrier, out)
            self.check_barrier(out)
        elif table.n < 2:
            self.hold(table, WAITING, out)
        elif t.balancing.three_short_stop(table):
            self.hold(table, SHORT, out)
        else:
            t.seating.deal(table)

    def maybe_release(self, table: Table, out: list[Instruction]) -> None:
        """A table held for players deals again once it has two and its next hand no longer waits for
        them under the 3-short rule [11D]."""
        t = self.t
        if (
            table.held in (WAITING, SHORT)
            and self.barrier is None
            and table.n >= 2
            and not t.balancing.three_short_stop(table)
        ):
            self.release(table, out)

    def tick(self, now_ms: int) -> list[Instruction]:
        """The clock: levels end, breaks start (synchronized) and end."""
        t = self.t
        if now_ms < self.now_ms:
            raise TournamentRuleError("the clock cannot go backwards")
        elapsed = now_ms - self.now_ms
        self.now_ms = now_ms
        out: list[Instruction] = []
        if t.status != "running":
            return out
        if self.break_ends_ms is not None:
            if self.clock_paused:
                # The director's pause stops the break's clock too: nobody is dealt in while paused.
                self.break_ends_ms += elapsed
            elif now_ms >= self.break_ends_ms:
                self.end_break(out)
            return out
        if self.clock_paused or self.break_due:
            return out
        self.level_elapsed_ms += elapsed
        while self.level_elapsed_ms >= t.config.structure.level(self.level).duration_s * 1000:
            self.level_elapsed_ms -= t.config.structure.level(self.level).duration_s * 1000
            brk = t.config.structure.break_after(self.level)
            if brk is not None:
                self.level_elapsed_ms = 0
                self.break_due = True
                t.note("break-due", self.level)
                if self.barrier is None:
                    self.set_barrier("break", out)
                break
            self.next_level(out)
        return out

    def next_clock_event_ms(self) -> int | None:
        """When ``tick`` next changes more than the clock's own counters: the end of the level (a new
        level, or a break falling due) or of the running break. None while nothing can fall due on the
        clock: not running, paused, or a break due but waiting for the tables (the barrier, not the clock).

        Pure. A tick before this time only adds the time elapsed (to the level, or to a paused break's
        end), and the next tick adds the rest: skipping it leaves the same state as making it.
        """
        t = self.t
        if t.status != "running":
            return None
        if self.break_ends_ms is not None:
            return None if self.clock_paused else self.break_ends_ms
        if self.clock_paused or self.break_due:
            return None
        duration_ms = t.config.structure.level(self.level).duration_s * 1000
        return self.now_ms + max(0, duration_ms - self.level_elapsed_ms)

    def next_level(self, out: list[Instruction]) -> None:
        t = self.t
        self.level += 1
        out.append(self.level_instruction())
        if t.registration_open and self.level > t.config.late_reg_until_level:
            t.placing.close_registration(out)

    def level_instruction(self) -> NewLevel:
        t = self.t
        level = t.config.structure.level(self.level)
        return NewLevel(
            self.level, level.small_blind, level.big_blind, level.ante, level.big_blind_ante, level.duration_s
        )

    def end_break(self, out: list[Instruction]) -> None:
        self.break_ends_ms = None
        self.break_due = False
        out.append(EndBreak())
        self.next_level(out)
        self.lift_barrier(out)

    def view(self, now_ms: int | None = None) -> dict[str, Any]:
        """The clock as the lobby shows it, at ``now_ms`` if given (the engine's time otherwise).

        A read: idle clock ticks are not facts (``next_clock_event_ms``), so the engine's own time may
        lag; the time since is projected here (up to the next clock event, which a tick makes)."""
        t = self.t
        elapsed = 0
        if now_ms is not None and now_ms > self.now_ms and t.status == "running":
            due = self.next_clock_event_ms()
            elapsed = min(now_ms, due if due is not None else now_ms) - self.now_ms
        level = t.config.structure.level(self.level)
        level_running = t.status == "running" and not (
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

    def pause(self) -> list[Instruction]:
        """The director pauses: the clock stops and every table finishes its hand and waits."""
        t = self.t
        out: list[Instruction] = []
        if t.status != "running" or self.clock_paused:
            raise TournamentRuleError("the tournament is not running or already paused")
        self.clock_paused = True
        t.note("pause")
        if self.barrier is None:
            self.set_barrier("pause", out)
        return out

    def resume(self) -> list[Instruction]:
        t = self.t
        out: list[Instruction] = []
        if not self.clock_paused:
            raise TournamentRuleError("the tournament is not paused")
        self.clock_paused = False
        t.note("resume")
        if self.barrier == "pause":
            self.lift_barrier(out)
        return out

    def hold(self, table: Table, reason: str, out: list[Instruction]) -> None:
        if table.held is None:
            table.held = reason
            self.held += 1
            out.append(HoldTable(table.id, reason))

    def release(self, table: Table, out: list[Instruction]) -> None:
        t = self.t
        if table.held is not None:
            table.held = None
            self.held -= 1
        t.seating.deal(table)
        out.append(ResumeTable(table.id))

    def resume_all(self, out: list[Instruction]) -> None:
        t = self.t
        for table in t.tables.values():
            if table.held is not None and not table.in_hand:
                if table.n < 2:
                    table.held = WAITING
                elif t.balancing.three_short_stop(table):
                    # Still waiting for its players [11D]: it stays held, now for that reason.
                    table.held = SHORT
                    out.append(HoldTable(table.id, SHORT))
                else:
                    self.release(table, out)

    def check_hand_for_hand(self, out: list[Instruction]) -> None:
        """Hand-for-hand [RP-8] while the next elimination(s) decide who cashes."""
        t = self.t
        if t.registration_open:
            return
        paid = t.prizes.paid_places() if t.config.format != "satellite" else t.prizes.seats_awarded()
        needed = paid > 0 and paid < t.remaining <= paid + t.config.hand_for_hand_margin and len(t.tables) > 1
        if needed and not self.hand_for_hand:
            self.hand_for_hand = True
            out.append(HandForHand(True))
            t.note("h4h-on", t.remaining, paid)
            if self.barrier is None:
                self.set_barrier("h4h", out)
        elif not needed and self.hand_for_hand and not self.h4h_round:
            self.hand_for_hand = False
            self.h4h_round = False
            out.append(HandForHand(False))
            t.note("h4h-off", t.remaining)
            if self.barrier == "h4h":
                self.lift_barrier(out)

    def set_barrier(self, barrier: str, out: list[Instruction]) -> None:
        t = self.t
        self.barrier = barrier
        for table in t.tables.values():
            if not table.in_hand:
                self.hold(table, barrier, out)
        self.check_barrier(out)

    def check_barrier(self, out: list[Instruction]) -> None:
        """Every table has finished its hand: the synchronized step happens now."""
        t = self.t
        if self.barrier is None or self.held < len(t.tables):
            return
        if self.barrier == "break":
            if self.break_ends_ms is None:
                brk = t.config.structure.break_after(self.level)
                duration = brk.duration_s if brk else 0
                self.break_ends_ms = self.now_ms + duration * 1000
                out.append(StartBreak(self.level, duration))
                t.note("break-start", duration)
                if t.config.structure.chip_race:
                    self.colour_up(out)
        elif self.barrier == "h4h":
            if self.h4h_round:
                t.placing.resolve_round(out)
            if self.barrier != "h4h" or t.status != "running":
                return
            # Between two hand-for-hand hands a due break or a pause takes over.
            if self.break_due and self.break_ends_ms is None:
                self.barrier = "break"
                self.check_barrier(out)
            elif self.clock_paused:
                self.barrier = "pause"
            else:
                self.h4h_round = True
                self.resume_all(out)

    def colour_up(self, out: list[Instruction]) -> None:
        """At the start of a break (every table between hands): when the smallest chip needed from the next
        level on is bigger than the one needed now, the odd chips are raced at each table [24, 25B]."""
        t = self.t
        old = smallest_chip(t.config.structure, self.level)
        new = smallest_chip(t.config.structure, self.level + 1)
        if new <= old:
            return
        for table_id in sorted(t.tables):
            seated = [(seat, entry) for seat, entry in enumerate(t.tables[table_id].seats) if entry is not None]
            after = chip_race([(entry, t.entries[entry].stack) for _, entry in seated], old, new, t.rng)
            for seat, entry_id in seated:
                entry = t.entries[entry_id]
                if after[entry_id] != entry.stack:
                    entry.stack = after[entry_id]
                    out.append(SetStack(entry_id, table_id, seat, entry.stack, "colour-up"))
        t.note("colour-up", old, new)

    def lift_barrier(self, out: list[Instruction]) -> None:
        """A break ended, the director resumed, or hand-for-hand is over: every held table deals again,
        and the next barrier due (a break, a pause, hand-for-hand) is set. When every table was waiting,
        they are dealt together: with hand-for-hand on, that hand is a hand-for-hand hand (TOURNAMENT.md:
        "Every hand dealt while hand-for-hand is on counts, including the first hand after a break or a
        pause"), its busts placed together when every table has played it."""
        t = self.t
        self.barrier = None
        together = not any(table.in_hand for table in t.tables.values())
        self.resume_all(out)
        if self.break_due and self.break_ends_ms is None:
            self.set_barrier("break", out)
        elif self.clock_paused:
            self.set_barrier("pause", out)
        elif self.hand_for_hand:
            self.h4h_round = together and any(table.in_hand for table in t.tables.values())
            self.set_barrier("h4h", out)
