"""Eliminations and places (TOURNAMENT.md "Eliminations and places"; hand-for-hand [RP-8]), the director's
undo of a bust-out and ordering of a tie, and the end of the tournament.

Places are given from the bottom as busts happen: busts of one table in one hand are ranked by their stack
at the start of that hand, equal stacks tie over the places they cover; busts during late registration get
their place when registration closes (the field is final then); busts of a hand-for-hand hand wait until
every table has played it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from tablium_event.domain.config import TournamentRuleError
from tablium_event.domain.field import WAITING, Entry, Table
from tablium_event.domain.instructions import (
    AwardPrize,
    EliminatePlayer,
    EliminationUndone,
    Instruction,
    SetStack,
    TieOrdered,
    TournamentFinished,
)

if TYPE_CHECKING:
    from tablium_event.domain.engine import Tournament


class Places:
    """Busts, ties, places and the undo of a bust-out. Owns the places given and the busts waiting for theirs."""

    __slots__ = ("last_bust", "pending_undo", "placed", "round_busts", "t", "unplaced", "winners")

    def __init__(self, tournament: Tournament) -> None:
        self.t = tournament
        self.placed = 0  # entries given a place, counted from the bottom
        self.unplaced: list[list[int]] = []  # bust groups (worst first) waiting for the field to be final
        self.round_busts: list[tuple[int, int]] = []  # (table, entry) busted in this hand-for-hand hand
        self.last_bust: dict[str, Any] | None = None
        self.pending_undo: dict[str, Any] | None = None  # a bust-out undo waiting for its table's hand to end
        self.winners: list[int] = []

    def dump(self) -> dict[str, Any]:
        return {
            "placed": self.placed,
            "unplaced": self.unplaced,
            "round_busts": [list(b) for b in self.round_busts],
            "last_bust": self.last_bust,
            "pending_undo": self.pending_undo,
            "winners": self.winners,
        }

    def load(self, state: Mapping[str, Any]) -> None:
        self.placed, self.last_bust = state["placed"], state["last_bust"]
        self.pending_undo, self.winners = state["pending_undo"], state["winners"]
        self.unplaced = [list(group) for group in state["unplaced"]]
        self.round_busts = [(table, entry) for table, entry in state["round_busts"]]

    def check_undo_bust(self, undo: Mapping[str, Any]) -> None:
        t = self.t
        entry = t.entry(undo["entry"])
        giver = t.entries.get(undo["from_entry"])
        if t.status != "running" or not entry.busted or entry.prize:
            raise TournamentRuleError("only an unpaid bust-out of a running tournament can be undone")
        if t.config.bounty:
            raise TournamentRuleError("a bust-out that paid a bounty cannot be undone")
        if any(not t.entries[e].busted for e in t.by_player[entry.player]):
            raise TournamentRuleError("the player has re-entered: the bust-out stands")
        if entry.place == 0 and [entry.id] not in self.unplaced:
            raise TournamentRuleError("the bust-out is placed when the hand-for-hand hand ends: undo it then")
        if giver is None or giver.busted or giver.table != undo["table"] or giver.stack <= undo["stack"]:
            raise TournamentRuleError(
                "the chips must come from a live player of that table who keeps at least one chip"
            )
        if entry.place and any(e.prize for e in self.placed_after(entry)):
            raise TournamentRuleError("players placed after this bust-out were already paid")

    def placed_after(self, entry: Entry) -> list[Entry]:
        """Entries given a better place than ``entry`` since it busted (places are given from the bottom)."""
        t = self.t
        best = len(t.entries) - self.placed + 1
        return [e for e in t.entries.values() if best <= e.place < entry.place]

    def undo_bust(self, undo: Mapping[str, Any], out: list[Instruction]) -> None:
        t = self.t
        entry, giver = t.entries[undo["entry"]], t.entries[undo["from_entry"]]
        # First, so that whoever learnt of the bust-out learns of its undo before the places re-announced.
        out.append(EliminationUndone(entry.id, entry.player, undo["table"], entry.place, entry.place_to))
        if entry.place:
            # Everyone placed since finished before this player now: one place worse each.
            for later in self.placed_after(entry):
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
        t.remaining += 1
        out.append(SetStack(giver.id, giver.table, giver.seat, giver.stack, f"chips back to entry {entry.id}"))
        table = t.tables[giver.table]
        if undo["seat"] in table.free_seats() and not table.breaking:
            seat = undo["seat"]
        else:
            if not table.free_seats() or table.breaking:
                table = t.seating.shortest_with_seat(out, allow_open=True)
            seat = t.seating.worst_seat(table)
        old = table.key()
        t.seating.seat(entry, table, seat)
        t.balancing.rekey(table, old)
        t.note("undo-bust", entry.id, table.id, seat, giver.id, undo["stack"])
        out.append(t.seating.seat_instruction(entry, "director undid the bust-out"))
        if not table.in_hand and table.held is None and table.n < 2:
            t.timing.hold(table, WAITING, out)
        t.timing.maybe_release(table, out)

    def order_tie(self, order: Sequence[int], out: list[Instruction]) -> None:
        """The director's ruling on a tie (TOURNAMENT.md, "What directors ask for"): ``order`` names every
        entry of one tie, best place first (e.g. the floor ruled who busted first: that one is last). Each
        gets its own place and that place's prize instead of a share of the tie's; the tie's prizes sum to
        the same amount, so the pool is unchanged. A tie still waiting for its places (late registration) is
        split into single busts, placed when registration closes."""
        t = self.t
        if t.status not in ("running", "finished"):
            raise TournamentRuleError("ties are ordered in a running or finished tournament")
        if len(order) < 2 or len(set(order)) != len(order):
            raise TournamentRuleError("name every entry of the tie, each once, best place first")
        entries = [t.entry(entry_id) for entry_id in order]
        group = sorted(order)
        if group in self.unplaced:
            at = self.unplaced.index(group)
            self.unplaced[at : at + 1] = [[entry_id] for entry_id in reversed(order)]  # worst first
            t.note("tie-ordered", ", ".join(map(str, order)), 0, 0)
            return
        first, last = entries[0].place, entries[0].place_to
        if (
            not first
            or any((e.place, e.place_to) != (first, last) for e in entries)
            or last - first + 1 != len(entries)
        ):
            raise TournamentRuleError("the entries are not exactly the players of one tie")
        if group == sorted(self.winners):
            raise TournamentRuleError("the winners share by the tournament's rule: not a tie to order")
        payouts = self.t.prizes.payouts
        amounts = [payouts[place - 1] if place <= len(payouts) else 0 for place in range(first, last + 1)]
        if sum(amounts) != sum(e.prize for e in entries):
            raise TournamentRuleError("the payouts changed since the tie was placed: its prizes stand")
        out.append(TieOrdered(tuple(order), first, last))
        for place, (entry, amount) in enumerate(zip(entries, amounts, strict=True), first):
            entry.place = entry.place_to = place
            entry.prize = amount
            reason = "place set by the director: tie ordered"
            out.append(EliminatePlayer(entry.id, entry.player, entry.table, place, place, reason))
            if amount:
                out.append(AwardPrize(entry.id, entry.player, place, amount, "place"))
        t.note("tie-ordered", ", ".join(map(str, order)), first, last)

    def standings(self) -> list[dict[str, Any]]:
        """Live entries by stack, then finished ones by place."""
        t = self.t
        live = sorted((e for e in t.entries.values() if not e.busted and not e.place), key=lambda e: (-e.stack, e.id))
        done = sorted((e for e in t.entries.values() if e.place), key=lambda e: (e.place, e.id))
        rows = [{"entry": e.id, "player": e.player, "stack": e.stack, "table": e.table, "place": None} for e in live]
        rows += [{"entry": e.id, "player": e.player, "place": e.place, "prize": e.prize} for e in done if e.place]
        return rows

    def places(self) -> list[tuple[int, int]]:
        t = self.t
        return [(e.id, e.place) for e in t.entries.values() if e.place]

    def bust(
        self,
        table: Table,
        busts: list[Entry],
        knockouts: Mapping[int, Sequence[int]],
        seated: list[int],
        out: list[Instruction],
    ) -> None:
        t = self.t
        old = table.key()
        for entry in busts:
            if entry.id in table.outgoing:
                t.balancing.cancel_move(entry, table, out)
            t.seating.unseat(entry, table)
            entry.busted = True
            t.remaining -= 1
            if t.config.bounty:
                hunters = knockouts.get(entry.id) or t.prizes.eliminators(entry, seated)
                t.prizes.pay_bounty(entry, hunters, out)
        t.balancing.rekey(table, old)
        self.last_bust = {"entry": busts[0].id, "table": table.id, "seat": busts[0].seat} if len(busts) == 1 else None
        if t.timing.h4h_round:
            self.round_busts.extend((table.id, entry.id) for entry in busts)
            for entry in busts:
                t.note("h4h-bust", entry.id, table.id)
                out.append(
                    EliminatePlayer(entry.id, entry.player, table.id, 0, 0, "hand-for-hand: place set after the hand")
                )
            return
        self.place_groups(self.ranked(busts), table.id, out)

    def place_groups(
        self, groups: list[list[int]], table_id: int, out: list[Instruction], *, eliminated: bool = True
    ) -> None:
        """Give places to bust groups listed worst first; each group ties over the places it covers."""
        t = self.t
        total = len(t.entries)
        for group in groups:
            if t.registration_open:
                self.unplaced.append(group)
                for entry_id in group:
                    entry = t.entries[entry_id]
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
                entry = t.entries[entry_id]
                entry.place, entry.place_to = first, last
                if eliminated:
                    out.append(EliminatePlayer(entry_id, entry.player, table_id, first, last, tie))
                t.note("eliminate", entry_id, table_id, first, f" (tied to {last})" if last != first else "")
            t.prizes.award(group, first, last, out)

    def close_registration(self, out: list[Instruction]) -> None:
        t = self.t
        t.registration_open = False
        t.prizes.refresh_payouts()
        t.note("registration", len(t.entries))
        groups, self.unplaced = self.unplaced, []
        self.place_groups(groups, 0, out)

    def finish(self, out: list[Instruction]) -> None:
        t = self.t
        live = sorted(e.id for e in t.entries.values() if not e.busted)
        self.place_groups([live], 0, out, eliminated=False)
        for entry_id in live:
            entry = t.entries[entry_id]
            if t.config.bounty and entry.bounty:
                # The winner keeps their own bounty.
                t.prizes.bounties_paid += entry.bounty
                out.append(AwardPrize(entry_id, entry.player, entry.place, entry.bounty, "bounty"))
                entry.bounty = 0
        self.winners = live
        t.status = "finished"
        t.note("finish")
        out.append(TournamentFinished(tuple(live)))

    def resolve_round(self, out: list[Instruction]) -> None:
        """Busts of one hand-for-hand hand (TOURNAMENT.md, "Both rules together"): at each table its busts
        ranked by starting stack, lowest first (equal stacks tie); the lowest of every table form one tie
        group (the lowest places), the second-lowest of every table the next group, and so on."""
        t = self.t
        busts, self.round_busts = self.round_busts, []
        t.timing.h4h_round = False
        if busts:
            by_table: dict[int, list[Entry]] = {}
            for table_id, entry_id in busts:
                by_table.setdefault(table_id, []).append(t.entries[entry_id])
            merged: list[list[int]] = []
            for entries in by_table.values():
                for rank, group in enumerate(self.ranked(entries)):
                    if rank == len(merged):
                        merged.append([])
                    merged[rank].extend(group)
            self.place_groups([sorted(group) for group in merged], 0, out)
        t.after_change(out, None)

    @staticmethod
    def ranked(busts: Sequence[Entry]) -> list[list[int]]:
        """Busts of one table in one hand, worst first: the smaller starting stack finishes lower; equal
        stacks tie."""
        groups: dict[int, list[int]] = {}
        for entry in busts:
            groups.setdefault(entry.hand_start, []).append(entry.id)
        return [sorted(groups[stack]) for stack in sorted(groups)]
