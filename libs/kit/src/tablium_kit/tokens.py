"""What every bearer token verification shares: the principal it yields, typed claims, the cache of verified tokens."""

from __future__ import annotations

import time
from typing import Any, Literal, TypeVar

import msgspec

from tablium_kit.errors import Unauthorized

LEEWAY_S = 5
ClaimsT = TypeVar("ClaimsT", bound=msgspec.Struct)


def missing_token() -> Unauthorized:
    return Unauthorized("missing bearer token", headers={"WWW-Authenticate": "Bearer"})


class Principal(msgspec.Struct, frozen=True):
    """Who is calling: a player (``subject`` = player id) or a service (``service:<name>``)."""

    subject: str
    kind: Literal["user", "service"]
    roles: frozenset[str] = frozenset()
    token_id: str | None = None

    def has_role(self, role: str) -> bool:
        return role in self.roles


def typed_claims(claims: dict[str, Any], kind: type[ClaimsT]) -> ClaimsT:
    try:
        return msgspec.convert(claims, kind, strict=True)
    except msgspec.ValidationError as exc:
        raise Unauthorized(f"invalid token: {exc}") from None


def bearer_token(authorization: bytes) -> str:
    """The token of an ``Authorization: Bearer`` header value."""
    scheme, _, token = authorization.decode("latin-1").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    raise missing_token()


class VerifiedTokens:
    """Tokens already verified, each with its expiry, in a bounded cache.

    A client sends the same token with every request for its whole lifetime, and
    verifying one (pyjwt's parsing plus the signature check) costs more than the
    rest of a small request. Only tokens that passed every check are stored, and
    a hit is re-checked against the token's own expiry (with the same leeway as
    pyjwt), so the cache never accepts what verification would refuse. Entries are
    keyed by the raw ``Authorization`` header that carried the token, so a hit
    parses nothing.
    """

    def __init__(self, size: int = 10_000) -> None:
        self._size = size
        self._entries: dict[bytes, tuple[Principal, float]] = {}

    def get(self, authorization: bytes) -> Principal | None:
        entry = self._entries.get(authorization)
        if entry is None:
            return None
        principal, expires_at = entry
        if time.time() < expires_at + LEEWAY_S:
            return principal
        del self._entries[authorization]
        return None

    def clear(self) -> None:
        self._entries.clear()

    def put(self, authorization: bytes, principal: Principal, expires_at: float) -> None:
        if len(self._entries) >= self._size:
            # Dicts keep insertion order: drop the oldest entry.
            del self._entries[next(iter(self._entries))]
        self._entries[authorization] = (principal, expires_at)
