"""Entries and purchases (TOURNAMENT.md "Formats"): who may enter or re-enter now, rebuys (the same seat,
chips at the next hand report) and the add-on (at the add-on break). The pool they grow is ``Prizes``'.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from tablium_event.domain.config import TournamentRuleError
from tablium_event.domain.field import Entry
from tablium_event.domain.instructions import Instruction, SetStack

if TYPE_CHECKING:
    from tablium_event.domain.engine import Tournament


class Purchases:
    """Entry, rebuy and add-on rules. Owns the rebuys paid whose chips wait for their table's next report."""

    __slots__ = ("pending_rebuys", "t")

    def __init__(self, tournament: Tournament) -> None:
        self.t = tournament
        # Entries that bought a rebuy (paid, counted in the pool) whose chips come with their table's next report.
        self.pending_rebuys: list[int] = []

    def dump(self) -> dict[str, Any]:
        return {"pending_rebuys": self.pending_rebuys}

    def load(self, state: Mapping[str, Any]) -> None:
        self.pending_rebuys = list(state.get("pending_rebuys", ()))

    def registration_refusal(self, player: str) -> str | None:
        """Why ``player`` cannot enter now, or None (asked before any money is taken)."""
        t = self.t
        if t.status not in ("registering", "running") or not t.registration_open:
            return "registration is closed"
        previous = t.by_player.get(player, [])
        if any(not t.entries[e].busted for e in previous):
            return "the player already has a live entry"
        if len(previous) > t.config.max_reentries:
            return "no re-entries left"
        if t.config.format == "sng" and len(t.entries) >= t.config.seats_per_table:
            return "the sit-and-go is full"
        if t.prizes.prizes_paid:
            # The bounty rule (ADR 0006): bounties paid leave entries and rebuys open (a bounty comes from
            # the bounty parts, never from the prize pool a later entry joins); the first place prize closes them.
            return "prizes are already being paid"
        if t.prizes.would_pay_a_decided_place(t.config.price("entry").prize_pool, 1):
            return "the prize pool can no longer grow: places it would pay are decided"
        return None

    def purchase_refusal(self, kind: str, entry_id: int) -> str | None:
        """Why ``entry_id`` cannot buy a rebuy or the add-on now, or None (asked before any money is
        taken; changes nothing). ``buy_rebuy`` and ``addon`` refuse for exactly these reasons."""
        t = self.t
        entry = t.entry(entry_id)
        config = t.config
        if kind == "rebuy":
            if t.status != "running" or entry.busted or entry_id in self.pending_rebuys:
                return f"entry {entry_id} cannot rebuy now"
            if (
                t.timing.level > config.rebuy_until_level
                or config.rebuy_chips <= 0
                or entry.stack > config.starting_stack
            ):
                return f"entry {entry_id} cannot rebuy now"
        elif kind == "addon":
            level = config.addon_level()
            if config.addon_chips <= 0 or level is None:
                return "this tournament has no add-on"
            if t.status != "running" or t.timing.break_ends_ms is None or t.timing.level != level:
                return f"an add-on is possible only during the break after level {level}"
            if entry.addon or entry.busted:
                return f"entry {entry_id} already took its add-on or is out"
        else:
            raise ValueError(f"not a purchase: {kind}")
        if t.prizes.prizes_paid:
            return "prizes are already being paid"
        if t.prizes.would_pay_a_decided_place(config.price(kind).prize_pool):
            return "the prize pool can no longer grow: places it would pay are decided"
        return None

    def buy_rebuy(self, entry_id: int) -> list[Instruction]:
        """A player buys a rebuy during a hand: it is checked and counted in the pool now, and its chips
        are added when the player's table reports the hand (before busts, so it saves a player who busts)."""
        t = self.t
        refusal = self.purchase_refusal("rebuy", entry_id)
        if refusal is not None:
            raise TournamentRuleError(refusal)
        entry = t.entries[entry_id]
        self.pending_rebuys.append(entry_id)
        t.prizes.add_rebuy(entry)
        return []

    def addon(self, entry_id: int) -> list[Instruction]:
        """One add-on per entry, during the add-on break: the first break after the rebuy period
        (``config.addon_level()``), while every table is held."""
        t = self.t
        refusal = self.purchase_refusal("addon", entry_id)
        if refusal is not None:
            raise TournamentRuleError(refusal)
        entry = t.entries[entry_id]
        entry.addon = True
        entry.stack += t.config.addon_chips
        t.prizes.add_addon()
        return [SetStack(entry.id, entry.table, entry.seat, entry.stack, "add-on")]

    def rebuy_in_hand(self, entry: Entry, out: list[Instruction]) -> None:
        """A rebuy the table reports with the hand (``hand_finished(rebuys=...)``): chips at once, between hands."""
        t = self.t
        config = t.config
        if t.timing.level > config.rebuy_until_level or config.rebuy_chips <= 0 or entry.stack > config.starting_stack:
            raise TournamentRuleError(f"entry {entry.id} cannot rebuy now")
        if t.prizes.prizes_paid:
            raise TournamentRuleError("prizes are already being paid")
        entry.stack += config.rebuy_chips
        t.prizes.add_rebuy(entry)
        out.append(SetStack(entry.id, entry.table, entry.seat, entry.stack, "rebuy"))
