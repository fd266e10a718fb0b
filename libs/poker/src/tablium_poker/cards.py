"""Cards as small ints: ``rank * 4 + suit`` with ranks 2..A -> 0..12 and suits c, d, h, s -> 0..3.

This is phevaluator's own card id, so evaluation needs no conversion.

>>> parse_cards("AcKs")
(48, 47)
>>> format_cards((48, 47))
'AcKs'
"""

from collections.abc import Iterable
from functools import lru_cache

from .errors import PokerError

RANKS = "23456789TJQKA"
SUITS = "cdhs"
DECK: tuple[int, ...] = tuple(range(52))
CARD_NAMES: tuple[str, ...] = tuple(r + s for r in RANKS for s in SUITS)
_CARD_IDS = {name: card for card, name in enumerate(CARD_NAMES)}


class CardError(PokerError):
    """A card string is not two characters of rank then suit, e.g. ``Ah``."""


def parse_card(text: str) -> int:
    """Return the card id of ``text`` such as ``"Th"``."""
    try:
        return _CARD_IDS[text[0].upper() + text[1:].lower()] if len(text) == 2 else _CARD_IDS[text]
    except (KeyError, IndexError):
        raise CardError(f"not a card: {text!r} (expected rank 2-9TJQKA then suit cdhs)") from None


def parse_cards(text: str) -> tuple[int, ...]:
    """Parse concatenated cards such as ``"AcKs7d"`` (spaces allowed)."""
    text = text.replace(" ", "")
    if len(text) % 2:
        raise CardError(f"not a list of cards: {text!r}")
    return tuple(parse_card(text[i : i + 2]) for i in range(0, len(text), 2))


def format_card(card: int) -> str:
    """Return the two-character name of a card id."""
    return CARD_NAMES[card]


def format_cards(cards: Iterable[int]) -> str:
    """Return the concatenated names of the cards."""
    return _names(cards if isinstance(cards, tuple) else tuple(cards))


@lru_cache(maxsize=8192)
def _names(cards: tuple[int, ...]) -> str:
    # A table saves its hand's whole state on every action, every event's cards included (ADR 0012):
    # the same few tuples each time.
    return "".join([CARD_NAMES[c] for c in cards])
