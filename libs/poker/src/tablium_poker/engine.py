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
from typing import Any

from phevaluator import _pheval

from .betting import BettingActions
from .cards import format_cards, parse_cards
from .errors import HandFinished, IllegalAction, InvalidSetup
from .hand_state import (
    BETTING,
    FINISHED,
    HIDDEN_CARD_EVENTS,
    PRIVATE_CARD_EVENTS,
    STREETS,
    Event,
    LegalActions,
)
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


class Hand(BettingActions):
    """One hand of No-Limit Hold'em from the blinds to the last chip pushed."""

    __slots__ = ()

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
