"""A provably fair deck: the shuffle is a pure function of a secret seed.

The lobby draws the seed with :func:`new_seed`, publishes :func:`commitment` before the hand and the
seed after it; anyone can then rebuild the deck with :func:`deck_from_seed`.

Scheme: HMAC-SHA256(seed, b"tablium-deck" || counter) blocks give a stream of 32-bit words
(a counter-mode DRBG); a front-to-back Fisher-Yates shuffle draws each index by rejection sampling,
so there is no modulo bias.

>>> seed = bytes(32)
>>> deck_from_seed(seed) == deck_from_seed(seed)
True
>>> sorted(deck_from_seed(seed)) == list(range(52))
True
>>> deck_from_seed(seed, 5) == deck_from_seed(seed)[:5]
True
>>> len(commitment(seed))
64
"""

import hashlib
import hmac
import secrets
import struct

from .errors import InvalidSetup

SEED_BYTES = 32
_LABEL = b"tablium-deck"
_WORDS = struct.Struct(">8I")


def new_seed() -> bytes:
    """Return a fresh 256-bit seed from the operating system's CSPRNG."""
    return secrets.token_bytes(SEED_BYTES)


def commitment(seed: bytes) -> str:
    """Return the SHA-256 hex digest of the seed, published before the deal."""
    return hashlib.sha256(seed).hexdigest()


def deck_from_seed(seed: bytes, count: int = 52) -> list[int]:
    """Return the first ``count`` cards of the deck shuffled by ``seed``.

    Only ``count`` Fisher-Yates steps run; the front-to-back shuffle makes the result
    a prefix of the full 52-card deck, so a hand that needs 20 cards can skip the rest.
    """
    if len(seed) < 16:
        raise InvalidSetup("a deck seed needs at least 128 bits")
    if not 0 <= count <= 52:
        raise InvalidSetup(f"cannot draw {count} cards from a 52-card deck")
    deck = list(range(52))
    words: list[int] = []
    counter = 0
    for i in range(min(count, 51)):
        bound = 52 - i
        limit = 0x100000000 - 0x100000000 % bound  # largest multiple of bound: no modulo bias
        while True:
            if not words:
                block = hmac.digest(seed, _LABEL + counter.to_bytes(8, "big"), "sha256")
                counter += 1
                words = list(_WORDS.unpack(block))
                words.reverse()
            word = words.pop()
            if word < limit:
                break
        j = i + word % bound
        deck[i], deck[j] = deck[j], deck[i]
    return deck[:count]
