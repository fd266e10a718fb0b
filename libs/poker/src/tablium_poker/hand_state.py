"""A hand's fields and what it emits and answers: its events, the actor's legal actions, the pots, its phases.

:class:`HandState` holds the fields and the checks every part of the hand uses; the betting
(:mod:`.betting`), the showdown (:mod:`.showdown`) and the hand itself (:mod:`.engine`) build on it.
"""

from typing import Any, NamedTuple

from .cards import format_cards
from .errors import HandFinished, IllegalAction, NotYourTurn, PokerError
from .rules import TableRules

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


class HandState:
    """The fields of a hand (indexed clockwise from the first seat left of the button) and shared checks."""

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

    def _deal_street(self) -> None:
        self.street += 1
        deck, pos = self.deck, self.deck_pos
        count = 3 if self.street == 1 else 1
        self.events.append(Event("burn", -1, 0, (deck[pos],)))
        cards = tuple(deck[pos + 1 : pos + 1 + count])
        self.deck_pos = pos + 1 + count
        self.board.extend(cards)
        self.events.append(Event(STREETS[self.street], -1, 0, cards))
