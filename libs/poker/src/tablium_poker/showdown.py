"""Showdown and the pots: who shows in what order, side pots by layers, the rake per pot attributed to the
seats that paid into it, odd chips (a mixin of :class:`tablium_poker.engine.Hand`, whose fields it uses)."""

from collections.abc import Sequence

from phevaluator import _pheval

from .errors import HandFinished, IllegalAction, NotYourTurn
from .hand_state import FINISHED, SHOWDOWN, Event, HandState, Pot

_EVAL7 = _pheval.evaluate_7cards


class Showdown(HandState):
    __slots__ = ()

    # ------------------------------------------------------------------ showdown

    def _begin_showdown(self) -> None:
        if not self.all_in_showdown:
            self.all_in_showdown = any(not self.folded[i] and not self.stack[i] for i in range(self.n))
        self.phase = SHOWDOWN
        first = self.aggressor if self.aggressor >= 0 else self.opener
        order = [(first + k) % self.n for k in range(self.n)]
        self.showdown_order = [i for i in order if not self.folded[i]]
        self.showdown_pos = 0
        if self.rules.auto_showdown:
            self._auto_showdown()
        else:
            self.actor = self.showdown_order[0]

    def _auto_showdown(self) -> None:
        """Table every hand when someone is all-in; otherwise show only hands that can still win."""
        if self.all_in_showdown:
            for i in self.showdown_order:
                self.shown[i] = True
                self.events.append(Event("show", self.seats[i], 0, self.hole[i]))
            self._finish_showdown()
            return
        best: dict[int, int] = {}  # pot level -> best strength shown so far
        levels = sorted({self.committed[i] for i in self.showdown_order})
        strengths = self._strengths()
        for i in self.showdown_order:
            s = strengths[i]
            mine = [lv for lv in levels if lv <= self.committed[i]]
            if any(s >= best.get(lv, 0) for lv in mine):
                self.shown[i] = True
                self.events.append(Event("show", self.seats[i], 0, self.hole[i]))
                for lv in mine:
                    best[lv] = max(best.get(lv, 0), s)
            else:
                self.mucked[i] = True
                self.events.append(Event("muck", self.seats[i]))
        self._finish_showdown()

    def _strengths(self) -> list[int]:
        b = self.board
        return [
            0 if self.folded[i] or self.mucked[i] else 7463 - _EVAL7(self.hole[i][0], self.hole[i][1], *b)
            for i in range(self.n)
        ]

    def can_show(self, seat: int) -> bool:
        """Whether ``seat`` is the next to show at a manual showdown."""
        return self._allowed(self._verify_showdown_turn, seat)

    def show(self, seat: int, cards: Sequence[int] | None = None) -> list[Event]:
        """Table the hole cards (``cards``, if given, must be the cards dealt)."""
        i = self._verify_showdown_turn(seat)
        if cards is not None and (len(cards) != 2 or set(cards) != set(self.hole[i])):
            raise IllegalAction(f"seat {seat} can show only the two cards it was dealt, not {list(cards)!r}")
        mark = len(self.events)
        self.shown[i] = True
        self.events.append(Event("show", seat, 0, self.hole[i]))
        self._next_to_show()
        return self.events[mark:]

    def can_muck(self, seat: int) -> bool:
        """Whether ``seat`` may muck: not when it is the last claimant of a pot it is in."""
        return self._allowed(self._verify_muck, seat)

    def muck(self, seat: int) -> list[Event]:
        """Throw the hand away unseen, giving up every pot."""
        i = self._verify_muck(seat)
        mark = len(self.events)
        self.mucked[i] = True
        self.events.append(Event("muck", seat))
        self._next_to_show()
        return self.events[mark:]

    def _verify_showdown_turn(self, seat: int) -> int:
        if self.phase != SHOWDOWN:
            if self.phase == FINISHED:
                raise HandFinished("the hand is over")
            raise IllegalAction("hands are shown only at showdown")
        i = self._seat_index(seat)
        if i != self.actor:
            raise NotYourTurn(f"seat {seat} cannot show yet: seat {self.seats[self.actor]} shows first")
        return i

    def _verify_muck(self, seat: int) -> int:
        i = self._verify_showdown_turn(seat)
        mine = self.committed[i]
        for j in range(self.n):
            if j != i and not self.folded[j] and not self.mucked[j] and self.committed[j] >= mine:
                return i
        raise IllegalAction("cannot muck: no other hand is left to claim a pot this player is in")

    def _next_to_show(self) -> None:
        self.showdown_pos += 1
        if self.showdown_pos < len(self.showdown_order):
            self.actor = self.showdown_order[self.showdown_pos]
        else:
            self.actor = -1
            self._finish_showdown()

    def _finish_showdown(self) -> None:
        while self.street < 3:
            self._deal_street()
        self._settle(self._strengths())

    # ------------------------------------------------------------------ pots, rake, payouts

    def _award_uncontested(self) -> None:
        winner = self.folded.index(False)
        # Everybody else folded, so every layer has one claimant: it is all one pot.
        shares = [c + d for c, d in zip(self.committed, self.dead_paid, strict=True)]
        self._pay([(sum(shares), [winner], shares)], [int(i == winner) for i in range(self.n)])

    def _layers(self, claim: list[bool]) -> list[tuple[int, list[int], list[int]]]:
        """Main and side pots as (amount, claimant indices, each player's share of the amount).

        Pots are layered by live contributions; dead money joins the main pot; consecutive
        layers with the same claimants are one pot (this also decides how odd chips fall).
        """
        committed, n = self.committed, self.n
        pots: list[tuple[int, list[int], list[int]]] = []
        if any(self.dead_paid):
            # Dead money (big-blind ante, missed blinds) can be won by every live hand.
            pots.append((sum(self.dead_paid), [i for i in range(n) if claim[i]], list(self.dead_paid)))
        previous = 0
        for level in sorted(set(committed)):
            if level == 0:
                continue
            shares = [0] * n
            claimants = []
            for i in range(n):
                c = committed[i]
                if c > previous:
                    shares[i] = (level if c > level else c) - previous
                    if c >= level and claim[i]:
                        claimants.append(i)
            if pots and pots[-1][1] == claimants:
                _, _, old = pots.pop()
                shares = [a + b for a, b in zip(old, shares, strict=True)]
            pots.append((sum(shares), claimants, shares))
            previous = level
        return pots

    def _settle(self, strengths: list[int]) -> None:
        # Hands that cannot win any pot are dead; layers the same live hands contest are then one
        # pot (PokerKit does the same), so odd chips are not multiplied by needless side pots.
        # A hand can win something iff it is best in its own top layer, the one with fewest rivals.
        committed, n = self.committed, self.n
        contenders = [i for i in range(n) if not self.folded[i] and not self.mucked[i]]
        can_win = [False] * n
        for i in contenders:
            mine = committed[i]
            can_win[i] = all(strengths[i] >= strengths[j] for j in contenders if committed[j] >= mine)
        self._pay(self._layers(can_win), strengths)

    def _pay(self, pots: list[tuple[int, list[int], list[int]]], strengths: list[int]) -> None:
        """Rake and push each pot to its best hands."""
        rules = self.rules
        take_rake = rules.rake_percent_bps > 0 and (self.street > 0 or not rules.no_flop_no_drop)
        cap_left = rules.rake_cap if rules.rake_cap else -1
        for number, (amount, claimants, shares) in enumerate(pots):
            rake = 0
            if take_rake and cap_left:
                rake = amount * rules.rake_percent_bps // 10_000
                if cap_left > 0:
                    rake = min(rake, cap_left)
                    cap_left -= rake
                self._attribute_rake(rake, amount, shares)
            prize = amount - rake
            self.events.append(Event("pot", number, prize))
            best = max(strengths[i] for i in claimants)
            winners = [i for i in claimants if strengths[i] == best]
            # Odd chips go to the first winner clockwise from the button (PokerKit; TDA).
            share, odd = divmod(prize, len(winners))
            for k, i in enumerate(winners):
                chips = share + odd if k == 0 else share
                self.won[i] += chips
                self.stack[i] += chips
                self.events.append(Event("win", self.seats[i], chips))
        self.phase = FINISHED
        self.actor = -1
        self.events.append(Event("hand_ended"))

    def _attribute_rake(self, rake: int, amount: int, shares: list[int]) -> None:
        """Split a pot's rake in proportion to what each player put in; largest remainders get the
        leftover chips (ties clockwise from the button), so the parts sum exactly to the rake."""
        if not rake:
            return
        parts = [rake * s // amount for s in shares]
        leftover = rake - sum(parts)
        order = sorted(range(self.n), key=lambda i: -(rake * shares[i] % amount))
        for i in order[:leftover]:
            parts[i] += 1
        for i, part in enumerate(parts):
            if part:
                self.raked[i] += part
                self.events.append(Event("rake", self.seats[i], part))

    def pots(self) -> list[Pot]:
        """Main and side pots as they stand (before rake), with the seats that can win each."""
        contenders = [not self.folded[i] and not self.mucked[i] for i in range(self.n)]
        return [
            Pot(amount, tuple(self.seats[i] for i in claimants)) for amount, claimants, _ in self._layers(contenders)
        ]

    # ------------------------------------------------------------------ betting actions
