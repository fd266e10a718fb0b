"""The No-Limit Hold'em hand: a pure state machine.

Players are indexed clockwise from the first seat left of the button (the button is last), the
order PHH and PokerKit use; the public API speaks in seat numbers. Every state change appends
:class:`Event` values to ``hand.events`` and the method that caused them returns them.

A heads-up hand: the button (seat 1) posts the small blind and acts first pre-flop.

>>> from tablium_poker import Hand, TableRules, deck_from_seed
>>> hand = Hand.start(TableRules(50, 100), {1: 1000, 4: 1000}, button=1, deck=deck_from_seed(bytes(32)))
>>> hand.actor_seat, hand.legal_actions().call, hand.legal_actions().min_to
(1, 50, 200)
>>> [e.kind for e in hand.raise_to(1, 300)]
['raise']
>>> [e.kind for e in hand.fold(4)][:2]
['fold', 'uncalled_bet_returned']
>>> hand.is_finished, hand.stacks()
(True, {1: 1100, 4: 900})
"""

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from phevaluator import _pheval

from .cards import format_cards, parse_cards
from .errors import HandFinished, IllegalAction, InvalidAmount, InvalidSetup, NotYourTurn, PokerError
from .rules import (
    MAX_CHIPS,
    MAX_PLAYERS,
    BlindPlan,
    FoldRule,
    TableRules,
    clockwise_from_button,
    is_chips,
    positional_blind_plan,
)

_EVAL7 = _pheval.evaluate_7cards

BETTING = "betting"
SHOWDOWN = "showdown"
FINISHED = "finished"
STREETS = ("preflop", "flop", "turn", "river")

# Event kinds whose cards only their seat may see, and kinds whose cards nobody sees.
PRIVATE_CARD_EVENTS = frozenset({"hole_cards"})
HIDDEN_CARD_EVENTS = frozenset({"burn"})


class Event(NamedTuple):
    """One state change. ``seat`` is -1 for table events (for ``pot``: the pot number, 0 = main);
    ``amount`` is chips (for ``bet``/``raise``: the total bet this street)."""

    kind: str
    seat: int = -1
    amount: int = 0
    cards: tuple[int, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Return the event as a JSON-able dict with card names."""
        return {"kind": self.kind, "seat": self.seat, "amount": self.amount, "cards": format_cards(self.cards)}


class LegalActions(NamedTuple):
    """What the actor may do. ``call`` is the chips a call adds (0: check instead);
    ``min_to``/``max_to`` bound a bet or raise *to* amount (both 0: no bet or raise allowed)."""

    seat: int
    fold: bool
    check: bool
    call: int
    min_to: int
    max_to: int


class Pot(NamedTuple):
    """A main or side pot: its amount and the seats that can still win it."""

    amount: int
    seats: tuple[int, ...]


class Hand:
    """One hand of No-Limit Hold'em from the blinds to the last chip pushed."""

    __slots__ = (
        "_index",
        "acted",
        "actor",
        "aggressor",
        "all_in_showdown",
        "bets",
        "board",
        "button",
        "committed",
        "current_bet",
        "dead_paid",
        "deck",
        "deck_pos",
        "events",
        "folded",
        "full_raise",
        "hole",
        "live",
        "mucked",
        "n",
        "opener",
        "phase",
        "raked",
        "rules",
        "seats",
        "showdown_order",
        "showdown_pos",
        "shown",
        "stack",
        "stacks_before",
        "street",
        "won",
    )

    rules: TableRules
    seats: tuple[int, ...]
    button: int
    _index: dict[int, int]
    n: int
    stacks_before: list[int]
    stack: list[int]
    bets: list[int]  # chips in front of each player this street
    committed: list[int]  # live chips each player put in the pot this hand (antes, blinds, bets)
    dead_paid: list[int]  # dead money (big-blind ante, missed blinds): main pot, not a bet
    folded: list[bool]
    acted: list[bool]  # acted since the last full bet or raise (the reopening rule)
    mucked: list[bool]
    shown: list[bool]
    hole: list[tuple[int, int]]
    board: list[int]
    deck: list[int]
    deck_pos: int
    street: int
    phase: str
    actor: int  # index of the player to act, -1 when nobody is
    current_bet: int
    full_raise: int  # size of the last full bet or raise this street
    aggressor: int  # last bettor or raiser this street, -1 if none
    opener: int  # first to act this street: shows first when nobody bet
    live: int  # players who have not folded
    showdown_order: list[int]
    showdown_pos: int
    all_in_showdown: bool  # a player is all-in at showdown: every hand is tabled
    won: list[int]
    raked: list[int]
    events: list[Event]

    # ------------------------------------------------------------------ setup

    @classmethod
    def start(
        cls,
        rules: TableRules,
        stacks: Mapping[int, int],
        button: int,
        deck: Sequence[int],
        blinds: BlindPlan | None = None,
    ) -> "Hand":
        """Deal a hand: post antes and blinds, deal hole cards from ``deck`` (in order), start betting.

        ``stacks`` maps seat number to chips for every player dealt in. ``button`` may be an empty
        seat (dead button). ``deck`` is usually :func:`tablium_poker.deck_from_seed`'s output.
        """
        if not isinstance(rules, TableRules):
            raise InvalidSetup("rules must be TableRules")
        # Checked with C-speed set and min/max passes: this runs for every hand dealt.
        if set(map(type, stacks)) | {type(button)} != {int} or min(stacks, default=button) < 0 or button < 0:
            raise InvalidSetup("seat numbers and the button must be ints >= 0")
        seats = clockwise_from_button(list(stacks), button)
        n = len(seats)
        if not 2 <= n <= MAX_PLAYERS:
            raise InvalidSetup(f"a hand needs 2 to {MAX_PLAYERS} players, got {n}")
        chips = list(stacks.values())
        if set(map(type, chips)) != {int} or min(chips) < 1 or max(chips) > MAX_CHIPS:
            raise InvalidSetup(f"every player dealt in needs an int stack of 1..{MAX_CHIPS} chips")
        if len(deck) < 2 * n + 8 or len(_ALL_CARDS.intersection(deck)) != len(deck) or set(map(type, deck)) != {int}:
            raise InvalidSetup(f"the deck needs {2 * n + 8} distinct card ids (ints 0..51) for {n} players")
        index = {seat: i for i, seat in enumerate(seats)}
        if blinds is None:
            plan = positional_blind_plan(rules, seats)
        else:
            _check_blind_plan(blinds, rules, index)
            plan = blinds

        h = cls.__new__(cls)
        h.rules = rules
        h.seats = tuple(seats)
        h.button = button
        h._index = index
        h.n = n
        h.stacks_before = [stacks[s] for s in seats]
        h.stack = list(h.stacks_before)
        h.bets = [0] * n
        h.committed = [0] * n
        h.dead_paid = [0] * n
        h.folded = [False] * n
        h.acted = [False] * n
        h.mucked = [False] * n
        h.shown = [False] * n
        h.board = []
        h.deck = list(deck)
        h.deck_pos = 2 * n
        h.hole = [(h.deck[i], h.deck[n + i]) for i in range(n)]
        h.street = 0
        h.phase = BETTING
        h.actor = -1
        h.current_bet = 0
        h.full_raise = 0
        h.aggressor = -1
        h.opener = 0
        h.live = n
        h.showdown_order = []
        h.showdown_pos = 0
        h.all_in_showdown = False
        h.won = [0] * n
        h.raked = [0] * n
        h.events = [Event("hand_started", button)]
        h._post_forced_bets(plan)
        for i in range(n):
            h.events.append(Event("hole_cards", seats[i], 0, h.hole[i]))
        h._start_preflop(plan)
        return h

    def _post_forced_bets(self, plan: BlindPlan) -> None:
        rules, stack, events, seats = self.rules, self.stack, self.events, self.seats
        if rules.ante:
            for i in range(self.n):
                paid = min(rules.ante, stack[i])
                stack[i] -= paid
                self.committed[i] += paid
                events.append(Event("ante", seats[i], paid))
            # An ante nobody else could match comes back at once, like an uncalled bet.
            ranked = sorted(range(self.n), key=self.committed.__getitem__)
            top, second = ranked[-1], self.committed[ranked[-2]]
            if self.committed[top] > second:
                excess = self.committed[top] - second
                stack[top] += excess
                self.committed[top] = second
                events.append(Event("uncalled_ante_returned", seats[top], excess))
        # The big-blind ante is posted before the big blind (TDA) and is dead money.
        dead = [(plan.big_blind_seat, rules.big_blind_ante, "big_blind_ante")]
        dead += [(seat, amount, "dead_blind") for seat, amount in plan.dead_posts.items()]
        for seat, amount, kind in dead:
            i = self._index[seat]
            paid = min(amount, stack[i])
            if paid:
                stack[i] -= paid
                self.dead_paid[i] += paid
                events.append(Event(kind, seat, paid))
        live = [
            (plan.small_blind_seat, rules.small_blind, "small_blind"),
            (plan.big_blind_seat, rules.big_blind, "big_blind"),
            (plan.straddle_seat, rules.straddle, "straddle"),
        ]
        live += [(seat, amount, "live_blind") for seat, amount in plan.live_posts.items()]
        for maybe_seat, amount, kind in live:
            if maybe_seat is None:
                continue
            i = self._index[maybe_seat]
            paid = min(amount, stack[i])
            if paid:
                stack[i] -= paid
                self.bets[i] += paid
                self.committed[i] += paid
                events.append(Event(kind, maybe_seat, paid))
        self.current_bet = max(self.bets)

    def _start_preflop(self, plan: BlindPlan) -> None:
        # The blinds count as the opening full bet, so the minimum raise is the largest blind.
        self.full_raise = max(self.rules.big_blind, self.rules.straddle if plan.straddle_seat is not None else 0)
        last_blind = plan.straddle_seat if plan.straddle_seat is not None else plan.big_blind_seat
        self.opener = (self._index[last_blind] + 1) % self.n
        self._open_betting()

    # ------------------------------------------------------------------ queries

    @property
    def is_finished(self) -> bool:
        """Whether the hand is over and every pot has been paid."""
        return self.phase == FINISHED

    @property
    def actor_seat(self) -> int | None:
        """The seat that must act now (bet, or show/muck at showdown), or None."""
        return self.seats[self.actor] if self.actor >= 0 else None

    def stacks(self) -> dict[int, int]:
        """Chips behind for each seat (final stacks once the hand is finished)."""
        return dict(sorted(zip(self.seats, self.stack, strict=True)))

    def hole_cards(self, seat: int) -> tuple[int, int]:
        """The hole cards of a seat (the engine's view; use :meth:`view` for what a player may see)."""
        return self.hole[self._seat_index(seat)]

    def total_pot(self) -> int:
        """All chips in the middle, including bets not yet gathered."""
        return sum(self.committed) + sum(self.dead_paid)

    def rake_by_seat(self) -> dict[int, int]:
        """Rake each seat paid (attributed per pot in proportion to what it put into the pot)."""
        return dict(sorted(zip(self.seats, self.raked, strict=True)))

    def legal_actions(self) -> LegalActions:
        """The actor's options with exact amounts; raises if nobody can bet now."""
        if self.phase != BETTING:
            if self.phase == FINISHED:
                raise HandFinished("the hand is over")
            raise IllegalAction("betting is over: the hand is at showdown")
        i = self.actor
        to_call = self.current_bet - self.bets[i]
        stack = self.stack[i]
        min_to = max_to = 0
        if self._raise_error(i) is None:
            max_to = stack + self.bets[i]
            min_to = min(self.current_bet + max(self.full_raise, self.rules.min_bet), max_to)
        return LegalActions(
            self.seats[i],
            to_call > 0 or self.rules.fold_rule is FoldRule.CHECK,
            to_call == 0,
            min(to_call, stack),
            min_to,
            max_to,
        )

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

    # ------------------------------------------------------------------ betting actions

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

    def _deal_street(self) -> None:
        self.street += 1
        deck, pos = self.deck, self.deck_pos
        count = 3 if self.street == 1 else 1
        self.events.append(Event("burn", -1, 0, (deck[pos],)))
        cards = tuple(deck[pos + 1 : pos + 1 + count])
        self.deck_pos = pos + 1 + count
        self.board.extend(cards)
        self.events.append(Event(STREETS[self.street], -1, 0, cards))

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

    # ------------------------------------------------------------------ helpers

    def _seat_index(self, seat: int) -> int:
        i = self._index.get(seat)
        if i is None:
            raise NotYourTurn(f"seat {seat} is not dealt in this hand")
        return i

    def _verify_turn(self, seat: int) -> int:
        if self.phase != BETTING:
            if self.phase == FINISHED:
                raise HandFinished("the hand is over: no more actions")
            raise IllegalAction("betting is over: the hand is at showdown")
        i = self._seat_index(seat)
        if i != self.actor:
            raise NotYourTurn(f"seat {seat} acted out of turn: seat {self.seats[self.actor]} is to act")
        return i

    @staticmethod
    def _allowed(verify: Any, *args: Any) -> bool:
        try:
            verify(*args)
        except PokerError:
            return False
        return True

    # ------------------------------------------------------------------ views and persistence

    def view(self, seat: int | None = None) -> dict[str, Any]:
        """What ``seat`` may see (None: a spectator): own hole cards, shown cards, public state."""
        visible = [self.shown[i] or self.seats[i] == seat for i in range(self.n)]
        players = [
            {
                "seat": s,
                "stack": self.stack[i],
                "bet": self.bets[i],
                "folded": self.folded[i],
                "all_in": not self.folded[i] and self.stack[i] == 0 and self.phase != FINISHED,
                "hole_cards": format_cards(self.hole[i]) if visible[i] else None,
            }
            for i, s in enumerate(self.seats)
        ]
        legal = None
        if self.phase == BETTING and self.seats[self.actor] == seat:
            legal = self.legal_actions()._asdict()
        return {
            "button": self.button,
            "street": STREETS[self.street],
            "phase": self.phase,
            "board": format_cards(self.board),
            "pot": self.total_pot(),
            "actor": self.actor_seat,
            "players": players,
            "legal_actions": legal,
            "events": [self._event_for(e, seat).to_dict() for e in self.events],
        }

    @staticmethod
    def _event_for(event: Event, seat: int | None) -> Event:
        if event.kind in HIDDEN_CARD_EVENTS or (event.kind in PRIVATE_CARD_EVENTS and event.seat != seat):
            return event._replace(cards=())
        return event

    def to_dict(self) -> dict[str, Any]:
        """The full state as a JSON-able dict (secret: includes the deck and every hole card)."""
        data: dict[str, Any] = {name: getattr(self, name) for name in _PLAIN_FIELDS}
        data["rules"] = self.rules.to_dict()
        data["seats"] = list(self.seats)
        data["hole"] = [format_cards(h) for h in self.hole]
        data["board"] = format_cards(self.board)
        data["deck"] = format_cards(self.deck)
        data["events"] = [e.to_dict() for e in self.events]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Hand":
        """Restore a hand saved with :meth:`to_dict`, mid-hand or finished."""
        h = cls.__new__(cls)
        try:
            for name in _PLAIN_FIELDS:
                value = data[name]
                setattr(h, name, list(value) if isinstance(value, list) else value)
            h.rules = TableRules.from_dict(data["rules"])
            h.seats = tuple(data["seats"])
            h._index = {seat: i for i, seat in enumerate(h.seats)}
            h.hole = [(c[0], c[1]) for c in map(parse_cards, data["hole"])]
            h.board = list(parse_cards(data["board"]))
            h.deck = list(parse_cards(data["deck"]))
            h.events = [Event(e["kind"], e["seat"], e["amount"], parse_cards(e["cards"])) for e in data["events"]]
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise InvalidSetup(f"not a saved hand: {exc!r}") from None
        return h


_ALL_CARDS = frozenset(range(52))


def _check_blind_plan(plan: BlindPlan, rules: TableRules, index: Mapping[int, int]) -> None:
    """Refuse a blind plan that names seats not dealt in, posts one blind twice or bad amounts."""
    if not isinstance(plan, BlindPlan):
        raise InvalidSetup("blinds must be a BlindPlan")
    posters = (plan.small_blind_seat, plan.big_blind_seat, plan.straddle_seat)
    for seat in (*posters, *plan.dead_posts, *plan.live_posts):
        if seat is not None and seat not in index:
            raise InvalidSetup(f"seat {seat} posts a blind but is not dealt in")
    named = [seat for seat in posters if seat is not None]
    if len(set(named)) != len(named):
        raise InvalidSetup("the small blind, big blind and straddle must be different seats")
    if plan.straddle_seat is not None and not rules.straddle:
        raise InvalidSetup("a straddle seat needs a table with a straddle amount")
    if not all(is_chips(amount, 1) for amount in (*plan.dead_posts.values(), *plan.live_posts.values())):
        raise InvalidSetup("dead and live posts must be positive int chip amounts")


_PLAIN_FIELDS = (
    "button",
    "n",
    "stacks_before",
    "stack",
    "bets",
    "committed",
    "dead_paid",
    "folded",
    "acted",
    "mucked",
    "shown",
    "deck_pos",
    "street",
    "phase",
    "actor",
    "current_bet",
    "full_raise",
    "aggressor",
    "opener",
    "live",
    "showdown_order",
    "showdown_pos",
    "all_in_showdown",
    "won",
    "raked",
)
