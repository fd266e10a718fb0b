"""PHH (Poker Hand History, TOML) import, replay and export for No-Limit Hold'em (``variant = 'NT'``).

PHH lists players from the first seat left of the button, the button last, like the engine.
``blinds_or_straddles`` and ``antes`` are by position (small blind, big blind, straddle...); heads-up
the button posts the small blind, so ``p2`` posts ``blinds_or_straddles[0]``.

Chip amounts may be written as integers or decimals; a decimal must be a whole number of chips
(``100.0`` is read as 100, ``12.5`` is refused), since the engine never splits a chip.

>>> text = '''
... variant = 'NT'
... antes = [0, 0]
... blinds_or_straddles = [1, 2]
... min_bet = 2
... starting_stacks = [200, 200]
... actions = ['d dh p1 AcAd', 'd dh p2 ????', 'p2 cbr 6', 'p1 f']
... '''
>>> replay(load_phh(text)).stacks()
{0: 198, 1: 202}
"""

import json
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from .cards import CardError, format_cards, parse_card
from .engine import Hand
from .errors import PhhError, PokerError
from .rules import MAX_CHIPS, MAX_PLAYERS, TableRules, default_blind_plan

_HOLE_CARDS = 2
_STREET_CARDS = (3, 1, 1)
_MAX_DIGITS = len(str(MAX_CHIPS))
_UNKNOWN = -1


@dataclass(frozen=True, slots=True)
class HandHistory:
    """The fields of a PHH file that define a No-Limit Hold'em hand, plus any others untouched."""

    antes: tuple[int, ...]
    blinds_or_straddles: tuple[int, ...]
    min_bet: int
    starting_stacks: tuple[int, ...]
    actions: tuple[str, ...]
    ante_trimming_status: bool = False
    finishing_stacks: tuple[int, ...] | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


def load_phh(text: str) -> HandHistory:
    """Parse PHH text; raises :class:`PhhError` saying which field is wrong."""
    try:
        data = tomllib.loads(text, parse_float=Decimal)
    except tomllib.TOMLDecodeError as exc:
        raise PhhError(f"not valid TOML: {exc}") from None
    variant = data.pop("variant", None)
    if variant != "NT":
        raise PhhError(f"only No-Limit Texas Hold'em (variant 'NT') is supported, got {variant!r}")
    try:
        stacks = _chips(data.pop("starting_stacks"), "starting_stacks")
        antes = _chips(data.pop("antes"), "antes")
        blinds = _chips(data.pop("blinds_or_straddles"), "blinds_or_straddles")
        min_bet = _chip(data.pop("min_bet"), "min_bet")
        actions = data.pop("actions")
    except KeyError as exc:
        raise PhhError(f"missing required field {exc.args[0]!r}") from None
    if not isinstance(actions, list) or not all(isinstance(a, str) for a in actions):
        raise PhhError("actions must be a list of strings")
    finishing = data.pop("finishing_stacks", None)
    trimming = data.pop("ante_trimming_status", False)
    if not isinstance(trimming, bool):
        raise PhhError("ante_trimming_status must be true or false")
    if not 2 <= len(stacks) <= MAX_PLAYERS:
        raise PhhError(f"starting_stacks has {len(stacks)} players; No-Limit Hold'em here is 2 to {MAX_PLAYERS}")
    for name, values in (("antes", antes), ("blinds_or_straddles", blinds)):
        if len(values) != len(stacks):
            raise PhhError(f"{name} has {len(values)} entries for {len(stacks)} players")
    return HandHistory(
        antes,
        blinds,
        min_bet,
        stacks,
        tuple(actions),
        trimming,
        None if finishing is None else _chips(finishing, "finishing_stacks"),
        data,
    )


def _chip(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise PhhError(f"{name}: {value!r} is not a chip amount")
    # Bound the size before int() so nan, inf or 1e400000 never reach it (the last would take
    # seconds to expand).
    if isinstance(value, Decimal) and (not value.is_finite() or value.adjusted() >= _MAX_DIGITS):
        raise PhhError(f"{name}: {value} is not a chip amount")
    if not -MAX_CHIPS <= value <= MAX_CHIPS:
        raise PhhError(f"{name}: {value} is more chips than the engine holds ({MAX_CHIPS})")
    if value != int(value):
        raise PhhError(f"{name}: {value} is not a whole number of chips (the engine never splits a chip)")
    return int(value)


def _chips(values: object, name: str) -> tuple[int, ...]:
    if not isinstance(values, list):
        raise PhhError(f"{name} must be a list of chip amounts")
    return tuple(_chip(v, name) for v in values)


def table_rules(history: HandHistory) -> TableRules:
    """Map positional PHH blinds and antes onto :class:`TableRules` (manual showdown, to follow ``sm``)."""
    n = len(history.starting_stacks)
    blinds, antes = history.blinds_or_straddles, history.antes
    straddle = blinds[2] if n > 3 else 0
    if any(blinds[3 if n > 3 else 2 :]) or (n == 2 and len(blinds) > 2):
        raise PhhError("only small blind, big blind and one straddle (with 4+ players) are supported")
    ante = big_blind_ante = 0
    if len(set(antes)) == 1:
        ante = antes[0]
    elif antes[1] and not any(a for k, a in enumerate(antes) if k != 1):
        if history.ante_trimming_status:
            raise PhhError("a big-blind ante needs ante_trimming_status = false (it is dead money)")
        big_blind_ante = antes[1]
    else:
        raise PhhError("antes must be the same for everybody or a big-blind ante only")
    try:
        return TableRules(blinds[0], blinds[1], ante, big_blind_ante, straddle, history.min_bet, auto_showdown=False)
    except PokerError as exc:
        raise PhhError(str(exc)) from None


def replay(history: HandHistory) -> Hand:
    """Play the history's actions through the engine and return the finished hand.

    Raises :class:`PhhError` naming the first action that breaks a rule, or if the actions stop
    before the hand is over. Unknown hole cards (``????``) are fine unless they must be compared.
    """
    n = len(history.starting_stacks)
    rules = table_rules(history)
    parsed = [_parse_action(k, text, n) for k, text in enumerate(history.actions)]
    try:
        hand = Hand.start(rules, dict(enumerate(history.starting_stacks)), n - 1, _stacked_deck(parsed, n))
    except PokerError as exc:
        raise PhhError(f"cannot start the hand: {exc}") from None
    board: list[int] = []
    for k, (actor, op, amount, cards) in enumerate(parsed):
        try:
            if op == "db":
                board.extend(cards)
                if hand.board[: len(board)] != board or len(hand.board) < len(board):
                    raise PhhError(f"board {format_cards(board)} dealt before the betting round ended")
            elif op == "f":
                hand.fold(actor)
            elif op == "cc":
                hand.check_or_call(actor)
            elif op == "cbr":
                hand.bet_or_raise_to(actor, amount)
            elif op == "sm":
                if cards:
                    hand.show(actor)
                else:
                    hand.muck(actor)
        except PokerError as exc:
            raise PhhError(f"action {k} {history.actions[k]!r}: {exc}") from None
    if not hand.is_finished:
        raise PhhError(f"the actions end before the hand does (next to act: seat {hand.actor_seat})")
    return hand


_Action = tuple[int, str, int, tuple[int, ...]]


def _parse_action(k: int, text: str, n: int) -> _Action:
    """Return (player index or -1 for the dealer, operation, amount, cards); -1 marks unknown cards."""
    words = text.split("#", 1)[0].split()
    where = f"action {k} {text!r}"
    if len(words) < 2:
        raise PhhError(f"{where}: expected '<actor> <operation> ...'")
    who, op, args = words[0], words[1], words[2:]
    if who == "d":
        if op == "dh" and len(args) == 2:
            return _player(args[0], n, where), op, 0, _cards(args[1], where)
        if op == "db" and len(args) == 1:
            return -1, op, 0, _cards(args[0], where)
        raise PhhError(f"{where}: the dealer only deals hole cards ('d dh pN CARDS') or the board ('d db CARDS')")
    actor = _player(who, n, where)
    if op in ("f", "cc") and not args:
        return actor, op, 0, ()
    if op == "cbr" and len(args) == 1:
        try:
            amount = _chip(Decimal(args[0]), where)
        except ArithmeticError:
            raise PhhError(f"{where}: {args[0]!r} is not an amount") from None
        return actor, op, amount, ()
    if op == "sm" and len(args) <= 1:
        return actor, op, 0, _cards(args[0], where) if args else ()
    raise PhhError(f"{where}: unsupported operation (No-Limit Hold'em uses f, cc, cbr, sm, d dh, d db)")


def _player(word: str, n: int, where: str) -> int:
    if word[:1] != "p" or not word[1:].isdigit() or not 1 <= int(word[1:]) <= n:
        raise PhhError(f"{where}: {word!r} is not a player p1..p{n}")
    return int(word[1:]) - 1


def _cards(text: str, where: str) -> tuple[int, ...]:
    if len(text) % 2:
        raise PhhError(f"{where}: {text!r} is not a list of cards")
    try:
        return tuple(
            _UNKNOWN if text[i : i + 2] == "??" else parse_card(text[i : i + 2]) for i in range(0, len(text), 2)
        )
    except CardError as exc:
        raise PhhError(f"{where}: {exc}") from None


def _stacked_deck(actions: Sequence[_Action], n: int) -> list[int]:
    """Order a deck so the engine deals exactly the history's cards.

    Hole cards come from ``d dh`` (or a later ``sm`` for ``????``); the board from ``d db``;
    unknown cards and burns are filled with cards nobody has seen.
    """
    hole: list[list[int]] = [[_UNKNOWN] * _HOLE_CARDS for _ in range(n)]
    dealt: set[int] = set()
    board: list[int] = []
    for actor, op, _, cards in actions:
        if op == "dh":
            if len(cards) != _HOLE_CARDS:
                raise PhhError(f"p{actor + 1} must be dealt {_HOLE_CARDS} hole cards")
            if actor in dealt:
                raise PhhError(f"p{actor + 1} is dealt hole cards twice")
            dealt.add(actor)
            hole[actor] = list(cards)
        elif op == "db":
            streets_dealt = len(board) and len(board) - 2  # 0 before the flop, then 1, 2, 3
            if streets_dealt >= len(_STREET_CARDS) or len(cards) != _STREET_CARDS[streets_dealt]:
                raise PhhError("the board is dealt as a flop of 3 cards, then a turn and a river of 1")
            board.extend(cards)
        elif op == "sm" and cards:
            if len(cards) != _HOLE_CARDS or any(
                h != _UNKNOWN and h != c for h, c in zip(hole[actor], cards, strict=True)
            ):
                raise PhhError(f"p{actor + 1} shows {format_cards(c for c in cards if c >= 0)}, not the cards dealt")
            hole[actor] = list(cards)
    if _UNKNOWN in board:
        raise PhhError("board cards must be known ('d db ??' cannot be replayed)")
    deck = [_UNKNOWN] * (2 * n + 8)
    for i, (first, second) in enumerate(hole):
        deck[i], deck[n + i] = first, second
    for pos, card in zip((2 * n + 1, 2 * n + 2, 2 * n + 3, 2 * n + 5, 2 * n + 7), board, strict=False):
        deck[pos] = card
    known = [c for c in deck if c != _UNKNOWN]
    if len(set(known)) != len(known):
        raise PhhError("a card is dealt twice")
    spare = iter(c for c in range(52) if c not in set(known))
    return [c if c != _UNKNOWN else next(spare) for c in deck]


def _check_default_blinds(hand: Hand) -> None:
    """PHH blinds are positional: refuse a hand whose blinds a tournament plan moved or added."""
    rules, seats = hand.rules, list(hand.seats)
    index = {seat: i for i, seat in enumerate(seats)}
    chips = list(hand.stacks_before)  # what each player has when the blinds are posted
    posted: dict[str, int] = {}
    for event in hand.events:
        if event.kind in ("dead_blind", "live_blind"):
            raise PhhError("PHH has no dead or live posts: only hands with positional blinds export")
        if event.kind in ("ante", "big_blind_ante"):
            chips[index[event.seat]] -= event.amount
        elif event.kind == "uncalled_ante_returned":
            chips[index[event.seat]] += event.amount
        elif event.kind in ("small_blind", "big_blind", "straddle"):
            posted[event.kind] = event.seat
    plan = default_blind_plan(rules, seats, hand.button)
    for kind, seat, amount in (
        ("small_blind", plan.small_blind_seat, rules.small_blind),
        ("big_blind", plan.big_blind_seat, rules.big_blind),
        ("straddle", plan.straddle_seat, rules.straddle),
    ):
        due = seat is not None and amount > 0 and chips[index[seat]] > 0
        if posted.get(kind) != (seat if due else None):
            raise PhhError(f"the {kind.replace('_', ' ')} was not posted by position: PHH cannot record this hand")


def history_from_hand(hand: Hand) -> HandHistory:
    """Export a hand played with the default blind plan as a PHH history (every card known)."""
    _check_default_blinds(hand)
    rules, n = hand.rules, hand.n
    blinds = [0] * n
    blinds[:2] = [rules.small_blind, rules.big_blind]
    if rules.straddle and n > 3:
        blinds[2] = rules.straddle
    antes = [rules.ante] * n
    if rules.big_blind_ante:
        antes[1] = rules.big_blind_ante
    index = {seat: i for i, seat in enumerate(hand.seats)}
    actions = [f"d dh p{i + 1} {format_cards(h)}" for i, h in enumerate(hand.hole)]
    codes = {"fold": "f", "check": "cc", "call": "cc", "bet": "cbr", "raise": "cbr", "show": "sm", "muck": "sm"}
    for event in hand.events:
        if event.kind in ("flop", "turn", "river"):
            actions.append(f"d db {format_cards(event.cards)}")
        elif event.kind in codes:
            words = [f"p{index[event.seat] + 1}", codes[event.kind]]
            if event.kind in ("bet", "raise"):
                words.append(str(event.amount))
            elif event.kind == "show":
                words.append(format_cards(event.cards))
            actions.append(" ".join(words))
    return HandHistory(
        tuple(antes),
        tuple(blinds),
        rules.min_bet,
        tuple(hand.stacks_before),
        tuple(actions),
        ante_trimming_status=not rules.big_blind_ante,
        finishing_stacks=tuple(hand.stack) if hand.is_finished else None,
        extra={"seats": list(hand.seats)},
    )


def dump_phh(history: HandHistory) -> str:
    """Write a history as PHH TOML text."""
    fields: dict[str, Any] = {
        "variant": "NT",
        "ante_trimming_status": history.ante_trimming_status,
        "antes": list(history.antes),
        "blinds_or_straddles": list(history.blinds_or_straddles),
        "min_bet": history.min_bet,
        "starting_stacks": list(history.starting_stacks),
        "actions": list(history.actions),
    }
    fields.update(history.extra)
    if history.finishing_stacks is not None:
        fields["finishing_stacks"] = list(history.finishing_stacks)
    return "".join(f"{key} = {_toml_value(value)}\n" for key, value in fields.items())


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | Decimal):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise PhhError(f"cannot write {value!r} to PHH")
