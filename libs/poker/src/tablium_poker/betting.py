"""Betting on a street: fold, check, call, bet, raise and all-in, each verified, then the turn moves on and
streets are dealt (a mixin of :class:`tablium_poker.engine.Hand`, whose fields it uses)."""

from .errors import IllegalAction, InvalidAmount
from .hand_state import SHOWDOWN, Event
from .rules import FoldRule
from .showdown import Showdown


class BettingActions(Showdown):
    __slots__ = ()

    def _raise_error(self, i: int) -> str | None:
        """Why player ``i`` may not bet or raise now, or None if they may."""
        to_call = self.current_bet - self.bets[i]
        if self.stack[i] <= to_call:
            return "a player whose stack does not cover the call can only call all-in or fold"
        if self.acted[i] and to_call < self.full_raise:
            return (
                "an incomplete all-in raise does not reopen the betting to a player who already acted "
                "and does not face a full raise"
            )
        for j in range(self.n):
            if j != i and not self.folded[j] and self.stack[j] + self.bets[j] > self.current_bet:
                return None
        return "nobody else can call a raise: every other player has folded or is all-in"

    def can_fold(self, seat: int) -> bool:
        """Whether ``seat`` may fold now (folding when checking is free follows ``rules.fold_rule``)."""
        return self._allowed(self._verify_fold, seat)

    def fold(self, seat: int) -> list[Event]:
        """Give up the hand (a free fold is refused or made a check, per ``rules.fold_rule``)."""
        i = self._verify_fold(seat)
        if self.current_bet == self.bets[i]:
            return self._check(i)
        mark = len(self.events)
        self.folded[i] = True
        self.acted[i] = True
        self.live -= 1
        self.events.append(Event("fold", seat))
        self._after_action(i)
        return self.events[mark:]

    def _verify_fold(self, seat: int) -> int:
        i = self._verify_turn(seat)
        if self.current_bet == self.bets[i] and self.rules.fold_rule is FoldRule.REFUSE:
            raise IllegalAction("folding when checking is free is refused by the table rules: check instead")
        return i

    def can_check(self, seat: int) -> bool:
        """Whether ``seat`` may check now."""
        return self._allowed(self._verify_check, seat)

    def check(self, seat: int) -> list[Event]:
        """Pass when there is nothing to call."""
        return self._check(self._verify_check(seat))

    def _verify_check(self, seat: int) -> int:
        i = self._verify_turn(seat)
        if self.current_bet != self.bets[i]:
            raise IllegalAction(f"cannot check facing a bet: {self.current_bet - self.bets[i]} to call")
        return i

    def _check(self, i: int) -> list[Event]:
        mark = len(self.events)
        self.acted[i] = True
        self.events.append(Event("check", self.seats[i]))
        self._after_action(i)
        return self.events[mark:]

    def can_call(self, seat: int) -> bool:
        """Whether ``seat`` may call now."""
        return self._allowed(self._verify_call, seat)

    def call(self, seat: int) -> list[Event]:
        """Match the current bet, or go all-in for less."""
        i = self._verify_call(seat)
        mark = len(self.events)
        paid = min(self.current_bet - self.bets[i], self.stack[i])
        self.stack[i] -= paid
        self.bets[i] += paid
        self.committed[i] += paid
        self.acted[i] = True
        self.events.append(Event("call", seat, paid))
        self._after_action(i)
        return self.events[mark:]

    def _verify_call(self, seat: int) -> int:
        i = self._verify_turn(seat)
        if self.current_bet == self.bets[i]:
            raise IllegalAction("nothing to call: check instead")
        return i

    def check_or_call(self, seat: int) -> list[Event]:
        """Check if free, else call (PHH ``cc``)."""
        i = self._verify_turn(seat)
        return self._check(i) if self.current_bet == self.bets[i] else self.call(seat)

    def can_bet(self, seat: int, amount: int) -> bool:
        """Whether ``seat`` may open the betting with a bet of ``amount``."""
        return self._allowed(self._verify_wager, seat, amount, "bet")

    def bet(self, seat: int, amount: int) -> list[Event]:
        """Open the betting on this street with ``amount`` chips."""
        return self._wager(self._verify_wager(seat, amount, "bet"), amount)

    def can_raise_to(self, seat: int, amount: int) -> bool:
        """Whether ``seat`` may raise to a total of ``amount`` this street."""
        return self._allowed(self._verify_wager, seat, amount, "raise")

    def raise_to(self, seat: int, amount: int) -> list[Event]:
        """Raise to a total of ``amount`` this street."""
        return self._wager(self._verify_wager(seat, amount, "raise"), amount)

    def can_bet_or_raise_to(self, seat: int, amount: int) -> bool:
        """Whether ``seat`` may bet or raise to ``amount``, whichever applies."""
        return self._allowed(self._verify_wager, seat, amount, None)

    def bet_or_raise_to(self, seat: int, amount: int) -> list[Event]:
        """Bet or raise to ``amount``, whichever applies (PHH ``cbr``)."""
        return self._wager(self._verify_wager(seat, amount, None), amount)

    def can_all_in(self, seat: int) -> bool:
        """Whether ``seat`` may put all their chips in now."""
        return self._allowed(self._verify_all_in, seat)

    def all_in(self, seat: int) -> list[Event]:
        """Bet or raise all-in if allowed, else call all-in when the call takes every chip."""
        i = self._verify_all_in(seat)
        if self._raise_error(i) is None:
            return self._wager(i, self.stack[i] + self.bets[i])
        return self.call(seat)

    def _verify_all_in(self, seat: int) -> int:
        i = self._verify_turn(seat)
        reason = self._raise_error(i)
        if reason is not None and self.stack[i] > self.current_bet - self.bets[i]:
            raise IllegalAction(f"cannot go all-in: {reason}")
        return i

    def act_default(self, seat: int) -> list[Event]:
        """The time-out action: check if free, else fold; at showdown, show."""
        if self.phase == SHOWDOWN:
            return self.show(seat)
        i = self._verify_turn(seat)
        return self._check(i) if self.current_bet == self.bets[i] else self.fold(seat)

    def _verify_wager(self, seat: int, amount: int, kind: str | None) -> int:
        i = self._verify_turn(seat)
        if kind == "bet" and self.current_bet:
            raise IllegalAction(f"there is already a bet of {self.current_bet}: raise instead")
        if kind == "raise" and not self.current_bet:
            raise IllegalAction("there is no bet to raise: bet instead")
        reason = self._raise_error(i)
        if reason is not None:
            raise IllegalAction(f"cannot bet or raise: {reason}")
        max_to = self.stack[i] + self.bets[i]
        min_to = min(self.current_bet + max(self.full_raise, self.rules.min_bet), max_to)
        if type(amount) is not int or not min_to <= amount <= max_to:
            raise InvalidAmount(
                f"a bet or raise must be to {min_to}..{max_to} (minimum raise = the last full raise, "
                f"maximum = all-in), got {amount!r}"
            )
        return i

    def _wager(self, i: int, amount: int) -> list[Event]:
        mark = len(self.events)
        increment = amount - self.current_bet
        if increment >= self.full_raise:
            # A full bet or raise reopens the betting for everybody else.
            self.full_raise = increment
            self.acted = [False] * self.n
        paid = amount - self.bets[i]
        self.stack[i] -= paid
        self.bets[i] = amount
        self.committed[i] += paid
        self.acted[i] = True
        self.events.append(Event("raise" if self.current_bet else "bet", self.seats[i], amount))
        self.current_bet = amount
        self.aggressor = i
        self._after_action(i)
        return self.events[mark:]

    # ------------------------------------------------------------------ flow

    def _after_action(self, i: int) -> None:
        if self.live == 1:
            self._end_street()
            self._award_uncontested()
            return
        n, folded, stack, acted, bet, current = self.n, self.folded, self.stack, self.acted, self.bets, self.current_bet
        j = i
        for _ in range(n - 1):
            j = j + 1 if j + 1 < n else 0
            if not folded[j] and stack[j] and (not acted[j] or bet[j] < current):
                self.actor = j
                return
        self._end_street()
        self._next_street()

    def _open_betting(self) -> None:
        """Give the turn to the street's opener, or skip betting when at most one player can act.

        A player whose bet already covers every opponent's whole stack is not asked to act: nobody
        can make them put in more (like a big blind facing only a short all-in small blind).
        """
        totals = sorted(self.bets[i] + self.stack[i] for i in range(self.n) if not self.folded[i])
        cover = totals[-2]
        able = []
        for i in range(self.n):
            if not self.folded[i] and self.stack[i]:
                if self.bets[i] < cover:
                    able.append(i)
                else:
                    self.acted[i] = True
        if not able or (len(able) == 1 and self.bets[able[0]] >= self.current_bet):
            self._end_street()
            self._next_street()
            return
        j = self.opener
        while j not in able:
            j = j + 1 if j + 1 < self.n else 0
        self.actor = j

    def _end_street(self) -> None:
        """Return the uncalled part of the top bet and clear the bets of the street."""
        self.actor = -1
        bet = self.bets
        top = max(range(self.n), key=bet.__getitem__)
        second = max(b for j, b in enumerate(bet) if j != top)
        if bet[top] > second:
            excess = bet[top] - second
            self.stack[top] += excess
            self.committed[top] -= excess
            self.events.append(Event("uncalled_bet_returned", self.seats[top], excess))
        self.bets = [0] * self.n
        self.current_bet = 0

    def _next_street(self) -> None:
        if self.street == 3:
            self._begin_showdown()
        elif sum(1 for i in range(self.n) if not self.folded[i] and self.stack[i]) <= 1:
            # Nobody can bet any more: hands are tabled before the rest of the board is dealt.
            self.all_in_showdown = True
            self._begin_showdown()
        else:
            self._deal_street()
            self.full_raise = 0
            self.aggressor = -1
            self.opener = 0
            self.acted = [False] * self.n
            self._open_betting()
