"""The tournament engine: facts in, instructions out. Pure, deterministic given the seed.

Facts: registration, start, a hand finished at a table (with the stacks after it), a clock
tick, a director command. Instructions: seat, move (only when the source table is between
hands), break a table, hold/resume a table, new level, start/end a break, hand-for-hand,
eliminate at a place, award a prize. Rule numbers in brackets are the TDA's, as quoted in
TOURNAMENT.md.

``Tournament`` is the aggregate: it holds the field (entries, tables and their indexes, the seeded
RNG, the decision log) and composes one component per concern, each readable against its section of
TOURNAMENT.md and owning that concern's state — ``Seating`` (seating.py), ``Balancing``
(balancing.py), ``Clock`` (clock.py), ``Places`` (places.py), ``Prizes`` (prizes.py), ``Purchases``
(purchases.py). A fact enters here and runs the concerns in the rules' order (``hand_finished``,
``after_change``); components call each other through the aggregate (``t.balancing.rekey(...)``).

Scale: tables are kept in a sorted list keyed by (effective players, seeded rank, id), so the
longest and the shortest table are found in O(log T); one hand touches its own table, the
tables that send or receive a player, and nothing else. "Effective" players count a seat
reserved for an incoming player and not a player who is leaving after the current hand: the
balance is planned at once and carried out as hands end.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from tablium_event.domain.balancing import Balancing
from tablium_event.domain.clock import Clock
from tablium_event.domain.config import TournamentConfig, TournamentRuleError
from tablium_event.domain.decisions import REASONS, describe
from tablium_event.domain.field import SHORT, WAITING, Entry, Key, MoverKey, Table
from tablium_event.domain.instructions import Instruction, SetStack, TournamentStarted
from tablium_event.domain.places import Places
from tablium_event.domain.prizes import Prizes
from tablium_event.domain.purchases import Purchases
from tablium_event.domain.seating import Seating
from tablium_event.domain.sorted import SortedList

__all__ = ["REASONS", "RULES_VERSION", "SHORT", "WAITING", "Entry", "Table", "Tournament", "describe"]

# The version of the rules this engine applies. Bump it with any change that can make a different decision
# from the same facts (who moves, when a table holds, what is accepted): a journal written under one version
# must not be replayed by another (docs/adr/0006-tournament-engine.md, "Rules version").
RULES_VERSION = 5  # 2: fixed payout shares for more places than entries pay the whole pool; 3: exact payout curve,
# and no purchase or entry that would grow the pool into a place already decided; 4: issue 15's rules (hand-for-hand
# after a break, busts of a hand-for-hand hand, the least-moved candidate at a table, moves decided again, ...);
# 5: the payout curve fitted to TOURNAMENT.md's example, round amounts for places 2-9


class _Component:
    """A component's attribute, read (and set) on the aggregate: the engine's public names stay where
    callers look for them while the state lives with its concern."""

    __slots__ = ("component", "name")

    def __init__(self, component: str, name: str | None = None) -> None:
        self.component = component
        self.name = name or ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = self.name or name

    def __get__(self, tournament: Tournament | None, owner: type | None = None) -> Any:
        if tournament is None:
            return self
        return getattr(getattr(tournament, self.component), self.name)

    def __set__(self, tournament: Tournament, value: Any) -> None:
        setattr(getattr(tournament, self.component), self.name, value)


class Tournament:
    """One tournament's rules state. Every public method is a fact (or a read); a fact returns instructions."""

    def __init__(self, config: TournamentConfig) -> None:
        config.check()
        self.config = config
        # Seeded on purpose: every draw must replay identically from the recorded state (not for secrecy).
        self.rng = random.Random(config.seed)  # noqa: S311
        self.status = "registering"  # registering | running | finished | cancelled
        self.registration_open = True
        self.entries: dict[int, Entry] = {}
        self.by_player: dict[str, list[int]] = {}
        self.tables: dict[int, Table] = {}
        self.next_table = 1
        self.remaining = 0  # live entries
        self.hands = 0
        self.log: list[list[Any]] = []
        # The balance order: shortest and longest table in O(log T).
        self.order: SortedList[Key] = SortedList()
        # Per table, the player it would send [11A] (the next big blind, not locked, not leaving), keyed by
        # how often that player moved before: the least-moved candidate over every longest table in O(log T).
        self.movers: SortedList[MoverKey] = SortedList()
        # Tables by physical player count (0..seats), for the 3-short rule [11D].
        self.by_count = [0] * (config.seats_per_table + 1)
        self.numbers: SortedList[int] = SortedList()  # open table numbers, for the break order
        self.seating = Seating(self)
        self.balancing = Balancing(self)
        self.timing = Clock(self)
        self.placing = Places(self)
        self.prizes = Prizes(self)
        self.purchases = Purchases(self)

    # The components' state under the engine's public names.
    tolerance = _Component("balancing")
    moves = _Component("balancing")
    last_move = _Component("balancing")
    fixed_seats = _Component("balancing")
    level = _Component("timing")
    level_elapsed_ms = _Component("timing")
    now_ms = _Component("timing")
    clock_paused = _Component("timing")
    break_due = _Component("timing")
    break_ends_ms = _Component("timing")
    barrier = _Component("timing")
    hand_for_hand = _Component("timing")
    h4h_round = _Component("timing")
    held = _Component("timing")
    placed = _Component("placing")
    unplaced = _Component("placing")
    round_busts = _Component("placing")
    last_bust = _Component("placing")
    pending_undo = _Component("placing")
    winners = _Component("placing")
    prize_pool = _Component("prizes")
    prizes_paid = _Component("prizes")
    bounties_paid = _Component("prizes")
    rebuy_bounties = _Component("prizes")
    rebuys = _Component("prizes")
    addons = _Component("prizes")
    payouts = _Component("prizes")
    pool_collected = _Component("prizes")
    pool_held = _Component("prizes")
    bounties_collected = _Component("prizes")
    pending_rebuys = _Component("purchases")

    # ------------------------------------------------------------------ registration and start

    def register(self, player: str) -> tuple[int, list[Instruction]]:
        """A new entry for ``player`` (a re-entry when an earlier one busted). Returns (entry id, instructions)."""
        refusal = self.purchases.registration_refusal(player)
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
            self.prizes.refresh_payouts()
            self.seating.late_seat(entry, out)
            self.balancing.balance(out, None)
        elif config.format == "sng" and len(self.entries) == config.seats_per_table:
            out.extend(self.start())
        return entry_id, out

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
        """Random seat draw [7]; the first level; registration closes now if late registration is off."""
        if self.status != "registering":
            raise TournamentRuleError("the tournament is not waiting to start")
        if len(self.entries) < 2:
            raise TournamentRuleError("at least two entries are needed to start")
        out: list[Instruction] = []
        self.status = "running"
        tables = self.seating.draw(out)
        self.remaining = len(self.entries)
        out.append(TournamentStarted(entries=len(self.entries), tables=len(tables)))
        out.append(self.timing.level_instruction())
        for table in tables:
            self.seating.first_positions(table)
            table.in_hand = True
        self.prizes.refresh_payouts()
        if self.config.late_reg_until_level < 1:
            self.placing.close_registration(out)
            if self.remaining <= self.prizes.seats_awarded():
                # A satellite whose pool buys a seat for everyone is over before the first hand.
                self.placing.finish(out)
                return out
        self.timing.check_hand_for_hand(out)
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
        bought = set(self.purchases.pending_rebuys).intersection(seated)
        busts: list[Entry] = []
        for entry_id in seated:
            entry = entries[entry_id]
            entry.hand_start = entry.stack
            entry.stack = stacks[entry_id]
            if entry_id in rebuying:
                self.purchases.rebuy_in_hand(entry, out)
            if entry_id in bought:
                # Paid and checked when it was bought: the chips arrive between hands, never mid-hand.
                entry.stack += self.config.rebuy_chips
                out.append(SetStack(entry.id, entry.table, entry.seat, entry.stack, "rebuy"))
            if entry.stack == 0:
                busts.append(entry)
        if bought:
            self.purchases.pending_rebuys = [e for e in self.purchases.pending_rebuys if e not in bought]
        pending = self.placing.pending_undo
        if pending is not None and entries[pending["from_entry"]].table == table.id:
            self.placing.pending_undo = None
            try:
                self.placing.check_undo_bust(pending)
            except TournamentRuleError as exc:
                self.note("undo-dropped", pending["entry"], str(exc))
            else:
                # Before this hand's busts are placed: the player busted earlier than they did.
                self.placing.undo_bust(pending, out)
        if busts:
            self.placing.bust(table, busts, knockouts, seated, out)
            self.balancing.redecide(table, out)
        for entry_id in list(table.outgoing):
            self.balancing.execute_move(entries[entry_id], out)
        if table.breaking:
            self.seating.close_if_empty(table, out)
        self.after_change(out, table)
        if self.status == "running":
            if table.id in self.tables and not table.in_hand and table.held is None:
                self.timing.after_hand(table, out)
            else:
                # Gone, or already held or dealt again by a synchronized step that this hand completed.
                self.timing.check_barrier(out)
        return out

    def after_change(self, out: list[Instruction], reporting: Table | None) -> None:
        if self.status != "running":
            return
        if self.registration_open and self.remaining <= 1:
            self.placing.close_registration(out)
        if not self.timing.h4h_round and self.remaining <= self.prizes.seats_awarded() and not self.registration_open:
            self.placing.finish(out)
            return
        self.balancing.break_tables(out)
        self.balancing.balance(out, reporting)
        self.timing.check_hand_for_hand(out)

    # ------------------------------------------------------------------ the clock and the director

    def tick(self, now_ms: int) -> list[Instruction]:
        """The clock: levels end, breaks start (synchronized) and end."""
        return self.timing.tick(now_ms)

    def next_clock_event_ms(self) -> int | None:
        return self.timing.next_clock_event_ms()

    def clock(self, now_ms: int | None = None) -> dict[str, Any]:
        return self.timing.view(now_ms)

    def pause(self) -> list[Instruction]:
        return self.timing.pause()

    def resume(self) -> list[Instruction]:
        return self.timing.resume()

    def set_tolerance(self, tolerance: int) -> list[Instruction]:
        return self.balancing.set_tolerance(tolerance)

    def lock_seat(self, entry_id: int, locked: bool = True) -> None:
        """A locked seat is never chosen for a balancing move (a broken table still moves it)."""
        entry = self.entry(entry_id)
        entry.locked = locked
        table = self.tables.get(entry.table)
        if table is not None and not entry.busted:
            self.balancing.refresh_mover(table)
        self.note("lock", entry_id, int(locked))

    def undo(self, what: str, *, stack: int | None = None, from_entry: int | None = None) -> list[Instruction]:
        """Undo the last move, or the last bust-out of a single player (``what="bust"``).

        Chips are never created: the player returns with ``stack`` chips taken back from ``from_entry``,
        a live player of the table where the bust happened (the one who won them). Both changes happen
        when that table is between hands: now if it is, else when it reports its current hand."""
        out: list[Instruction] = []
        if what == "move":
            if self.balancing.last_move is None:
                raise TournamentRuleError("no move to undo")
            self.balancing.undo_move(self.balancing.last_move, out)
            self.balancing.last_move = None
            return out
        if what != "bust":
            raise TournamentRuleError(f"cannot undo {what!r}: only a bust or a move")
        action = self.placing.last_bust
        if action is None:
            raise TournamentRuleError("no single bust-out to undo")
        if self.placing.pending_undo is not None:
            raise TournamentRuleError("an undo is already waiting for its table's hand to end")
        if stack is None or stack <= 0 or from_entry is None:
            raise TournamentRuleError("undoing a bust-out needs the chips to restore and the entry they come from")
        undo = {**action, "stack": stack, "from_entry": from_entry}
        self.placing.check_undo_bust(undo)
        giver = self.entries[from_entry]
        self.placing.last_bust = None
        if self.tables[giver.table].in_hand:
            self.placing.pending_undo = undo
            self.note("undo-bust-pending", action["entry"], giver.table)
        else:
            self.placing.undo_bust(undo, out)
            self.after_change(out, None)
        return out

    def order_tie(self, order: Sequence[int]) -> list[Instruction]:
        """The director's ordering of a tie, best place first: distinct places, each with its own prize."""
        out: list[Instruction] = []
        self.placing.order_tie(order, out)
        return out

    # ------------------------------------------------------------------ purchases

    def registration_refusal(self, player: str) -> str | None:
        return self.purchases.registration_refusal(player)

    def purchase_refusal(self, kind: str, entry_id: int) -> str | None:
        return self.purchases.purchase_refusal(kind, entry_id)

    def buy_rebuy(self, entry_id: int) -> list[Instruction]:
        return self.purchases.buy_rebuy(entry_id)

    def addon(self, entry_id: int) -> list[Instruction]:
        return self.purchases.addon(entry_id)

    # ------------------------------------------------------------------ views

    def standings(self) -> list[dict[str, Any]]:
        return self.placing.standings()

    def places(self) -> list[tuple[int, int]]:
        return self.placing.places()

    def deal_offer(self, method: str) -> list[dict[str, Any]]:
        return self.prizes.deal_offer(method)

    def paid_places(self) -> int:
        return self.prizes.paid_places()

    def table_view(self, table_id: int) -> dict[str, Any]:
        table = self.tables[table_id]
        return {
            "table": table.id,
            "button": table.button,
            "small_blind_seat": table.sb,
            "big_blind_seat": table.bb,
            "held": table.held,
            "breaking": table.breaking,
            "seats": [None if entry is None else self._seat_view(self.entries[entry]) for entry in table.seats],
        }

    @staticmethod
    def _seat_view(entry: Entry) -> dict[str, Any]:
        view: dict[str, Any] = {"entry": entry.id, "player": entry.player, "stack": entry.stack}
        if entry.waiting:
            view["waiting"] = True  # not dealt in this hand: seated between the small blind and the button
        return view

    # ------------------------------------------------------------------ the field and the log

    def entry(self, entry_id: int) -> Entry:
        entry = self.entries.get(entry_id)
        if entry is None:
            raise TournamentRuleError(f"no entry {entry_id}")
        return entry

    def note(self, kind: str, *data: int | str) -> None:
        self.log.append([len(self.log) + 1, self.hands, kind, *data])

    def decisions(self, since: int = 0) -> list[dict[str, Any]]:
        return [describe(row) for row in self.log[since:]]

    # ------------------------------------------------------------------ state

    def to_state(self) -> dict[str, Any]:
        version, internal, gauss = self.rng.getstate()
        return {
            "rules_version": RULES_VERSION,
            "config": self.config.to_dict(),
            "rng": [version, list(internal), gauss],
            "status": self.status,
            "registration_open": self.registration_open,
            "entries": [entry.dump() for entry in self.entries.values()],
            "tables": [table.dump() for table in self.tables.values()],
            "next_table": self.next_table,
            "hands": self.hands,
            "log": self.log,
            **self.balancing.dump(),
            **self.timing.dump(),
            **self.placing.dump(),
            **self.prizes.dump(),
            **self.purchases.dump(),
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Tournament:
        tournament = cls(TournamentConfig.from_dict(state["config"]))
        version, internal, gauss = state["rng"]
        tournament.rng.setstate((version, tuple(internal), gauss))
        tournament.status, tournament.registration_open = state["status"], state["registration_open"]
        tournament.next_table, tournament.hands = state["next_table"], state["hands"]
        tournament.log = [list(row) for row in state["log"]]
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
        tournament.remaining = sum(1 for e in tournament.entries.values() if not e.busted)
        for component in (tournament.balancing, tournament.timing, tournament.placing, tournament.prizes):
            component.load(state)
        tournament.purchases.load(state)
        for table in tournament.tables.values():
            tournament.balancing.refresh_mover(table)  # derived: rebuilt from the seats, never stored
        return tournament
