"""The prize pool and its payouts (TOURNAMENT.md "Prize pool and payouts"): the pool and the guarantee's
overlay, the payout table (``payouts.py`` computes it), prizes for places and ties, PKO bounties, deals.

The payout table is computed lazily when the pool changes (an entry, a rebuy, an add-on) and kept in the
state, so late registration and loading a state stay cheap.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from tablium_event.domain import payouts as pay
from tablium_event.domain.config import TournamentRuleError
from tablium_event.domain.field import Entry
from tablium_event.domain.instructions import AwardPrize, Instruction

if TYPE_CHECKING:
    from tablium_event.domain.engine import Tournament

STATE = ("prize_pool", "prizes_paid", "bounties_paid", "rebuys", "addons")


class Prizes:
    """The pool, what it pays, and what was paid."""

    __slots__ = ("_payouts", "rebuy_bounties", "t", *STATE)

    def __init__(self, tournament: Tournament) -> None:
        self.t = tournament
        self.prize_pool = 0
        self._payouts: list[int] | None = None  # the payout table, computed when first needed
        self.prizes_paid = 0
        self.bounties_paid = 0
        self.rebuy_bounties = 0  # PKO bounty parts of rebuys, added to the buyers' bounties
        self.rebuys = 0
        self.addons = 0

    def dump(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in STATE} | {
            "payouts": self._payouts,
            "rebuy_bounties": self.rebuy_bounties,
        }

    def load(self, state: Mapping[str, Any]) -> None:
        for name in STATE:
            setattr(self, name, state[name])
        self._payouts = state["payouts"]
        # States saved before rebuys carried a bounty part: none of their rebuys added one.
        self.rebuy_bounties = state.get("rebuy_bounties", 0)

    def would_pay_a_decided_place(self, extra_pool: int, extra_entries: int = 0) -> bool:
        """Whether a pool grown by ``extra_pool`` would pay a place already given to a busted entry (which
        was awarded what the smaller pool paid there: nothing). A satellite's next seat or cash remainder,
        a bigger field's extra paid place: the pool may not grow past what is decided."""
        t = self.t
        if not t.placing.placed:
            return False
        config = t.config
        entries = len(t.entries) + extra_entries
        pool = max(self.prize_pool, self.pool_collected + extra_pool)
        if config.format == "satellite":
            paid = pay.satellite_places_paid(pool, config.satellite_seat_value, entries)
        else:
            paid = pay.places_paid(pool, entries, config.buy_in, config.payout)
        best_decided = len(t.entries) - t.placing.placed + 1
        return best_decided <= paid

    @property
    def pool_collected(self) -> int:
        """The prize-pool parts paid in (entries, rebuys, add-ons): the pool without the guarantee's overlay."""
        t = self.t
        config = t.config
        return (
            len(t.entries) * config.price("entry").prize_pool
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
        t = self.t
        return len(t.entries) * t.config.bounty + self.rebuy_bounties

    def deal_offer(self, method: str) -> list[dict[str, Any]]:
        """What an ICM (Malmuth-Harville) or chip-chop deal gives each live entry, from the prizes of the
        places still to be decided; the amounts sum exactly to those prizes. Offered to the director."""
        t = self.t
        if t.status != "running":
            raise TournamentRuleError("a deal is offered only while the tournament runs")
        live = sorted((e for e in t.entries.values() if not e.busted), key=lambda e: (-e.stack, e.id))
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

    def award(self, group: list[int], first: int, last: int, out: list[Instruction]) -> None:
        t = self.t
        if first > len(self.payouts):
            return
        for entry_id, amount in zip(
            sorted(group), pay.split_places(self.payouts, first, last, len(group)), strict=True
        ):
            if amount:
                entry = t.entries[entry_id]
                entry.prize += amount
                self.prizes_paid += amount
                out.append(AwardPrize(entry_id, entry.player, first, amount, "place"))

    def eliminators(self, busted: Entry, seated: list[int]) -> list[int]:
        """When the table does not name who knocked a player out: the players of that table who won chips
        in the hand and covered the busted player (or, if none covered, every winner of chips). Someone
        always won chips, so a bounty is never left in the pool."""
        t = self.t
        winners = [
            t.entries[e] for e in seated if t.entries[e].stack > t.entries[e].hand_start and not t.entries[e].busted
        ]
        covering = [e.id for e in winners if e.hand_start >= busted.hand_start]
        return covering or [e.id for e in winners]

    def pay_bounty(self, entry: Entry, eliminators: Sequence[int], out: list[Instruction]) -> None:
        """PKO: half of the busted player's bounty in cash, half onto the eliminators' own bounties."""
        t = self.t
        hunters = sorted(set(eliminators))
        if not hunters:
            raise TournamentRuleError(f"nobody at the table won the chips of entry {entry.id}")
        cash = entry.bounty // 2
        added = entry.bounty - cash
        entry.bounty = 0
        for hunter_id, won, grown in zip(
            hunters, pay.split_evenly(cash, len(hunters)), pay.split_evenly(added, len(hunters)), strict=True
        ):
            hunter = t.entries[hunter_id]
            hunter.bounty += grown
            if won:
                self.bounties_paid += won
                out.append(AwardPrize(hunter_id, hunter.player, 0, won, "bounty"))

    def add_rebuy(self, entry: Entry) -> None:
        """A rebuy is paid like an entry (``config.price("rebuy")``): its prize-pool part grows the pool
        and, in a PKO event, its bounty part grows the buyer's own bounty, as the entry's did."""
        bounty = self.t.config.price("rebuy").bounty
        entry.bounty += bounty
        self.rebuy_bounties += bounty
        self.rebuys += 1
        self.refresh_payouts()

    def add_addon(self) -> None:
        self.addons += 1
        self.refresh_payouts()

    def refresh_payouts(self) -> None:
        """The pool changed (an entry, a rebuy, an add-on): the payout table is cut again when next needed."""
        t = self.t
        config = t.config
        self.prize_pool = pay.prize_pool(
            entries=len(t.entries),
            buy_in=config.price("entry").prize_pool,
            guarantee=config.guarantee,
            extra=self.rebuys * config.price("rebuy").prize_pool + self.addons * config.price("addon").prize_pool,
        ).total
        self._payouts = None

    @property
    def payouts(self) -> list[int]:
        """Amount per place (index 0: first place); sums exactly to the prize pool."""
        t = self.t
        if self._payouts is None:
            config = t.config
            if config.format == "satellite":
                self._payouts = pay.satellite_table(self.prize_pool, config.satellite_seat_value, len(t.entries))
            else:
                self._payouts = pay.payout_table(self.prize_pool, len(t.entries), config.buy_in, config.payout)
        return self._payouts

    def paid_places(self) -> int:
        return len(self.payouts)

    def seats_awarded(self) -> int:
        t = self.t
        if t.config.format != "satellite":
            return 1
        return max(1, min(self.prize_pool // t.config.satellite_seat_value, len(t.entries)))
