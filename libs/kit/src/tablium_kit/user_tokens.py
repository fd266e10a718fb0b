"""User access tokens: RS256 JWTs issued by the player service, verified with the keys of its JWKS."""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from collections.abc import Callable
from typing import Any, Protocol

import httpx
import jwt
import msgspec
import structlog
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey, RSAPublicNumbers
from jwt.utils import from_base64url_uint

from tablium_kit.errors import ServiceUnavailable, Unauthorized
from tablium_kit.tokens import LEEWAY_S, Principal, VerifiedTokens, bearer_token, missing_token, typed_claims

log = structlog.get_logger("tablium.auth")


class _AccessClaims(msgspec.Struct):
    """The claims of a user access token, by type: pyjwt checks the signature, times, issuer and audience,
    not that ``sub`` is a player id, ``roles`` a list of strings or ``exp`` a number (it takes ``"123"``)."""

    sub: uuid.UUID
    exp: float  # strict: an int or a float, never a string or a boolean (as the gateway checks)
    iat: float
    typ: str
    roles: list[str] = []
    jti: str | None = None
    nbf: float | None = None


class KeySource(Protocol):
    async def key_for(self, kid: str | None) -> Any: ...


def _key_by_id(keys: dict[str, Any], kid: str | None) -> Any:
    if kid is None and len(keys) == 1:
        return next(iter(keys.values()))
    key = keys.get(kid or "")
    if key is None:
        raise Unauthorized("token signed with an unknown key")
    return key


class StaticKeySource:
    """Keys known in-process (the player service verifies its own tokens this way)."""

    def __init__(self, keys: dict[str, Any]) -> None:
        self._keys = keys

    async def key_for(self, kid: str | None) -> Any:
        return _key_by_id(self._keys, kid)


class _Jwk(msgspec.Struct):
    """The members of a JWK the kit reads; anything else in it is ignored."""

    kty: str
    kid: str | None = None
    use: str | None = None
    n: str | None = None
    e: str | None = None


class _Jwks(msgspec.Struct):
    keys: list[_Jwk]


class MalformedKeySet(ValueError):
    """The issuer published a key set that isn't one: not JSON, or an RSA key that is no key."""


def rsa_public_keys(document: bytes) -> dict[str, RSAPublicKey]:
    """The RSA signing keys of a JWKS document, by ``kid``.

    Keys of other types or uses, or without a ``kid``, are skipped. Only the public
    members are read (a published ``d`` never makes a private key), and an RSA key
    that can't be built, or is under 2048 bits, makes the whole set malformed: keeping
    the keys known before beats dropping one silently.
    """
    try:
        jwks = msgspec.json.decode(document, type=_Jwks)
    except msgspec.DecodeError as exc:
        raise MalformedKeySet(f"not a JWKS: {exc}") from None
    keys: dict[str, RSAPublicKey] = {}
    for jwk in jwks.keys:
        if jwk.kty != "RSA" or jwk.kid is None or jwk.use not in (None, "sig"):
            continue
        if jwk.n is None or jwk.e is None:
            raise MalformedKeySet(f"RSA key {jwk.kid!r} has no modulus or exponent")
        try:
            key = RSAPublicNumbers(from_base64url_uint(jwk.e), from_base64url_uint(jwk.n)).public_key()
        except ValueError as exc:  # bad base64 (binascii.Error is a ValueError) or numbers that are no key
            raise MalformedKeySet(f"RSA key {jwk.kid!r}: {exc}") from None
        if key.key_size < 2048:
            raise MalformedKeySet(f"RSA key {jwk.kid!r} is only {key.key_size} bits")
        keys[jwk.kid] = key
    return keys


class JwksKeySource:
    """Public keys from a JWKS URL, cached; an unknown ``kid`` triggers a re-fetch (rotation).

    Fetches are single-flight: one request fetches while the others wait for it and
    then re-check (so 50 concurrent first verifications make one fetch). A fetch is
    bounded by ``timeout_s`` in total, so requests waiting behind a hanging issuer are
    answered when it times out, not one timeout after another; and a failed fetch is
    not retried for ``failure_backoff_s`` (negative caching), so an issuer that is down
    costs each request nothing. A failed fetch keeps the keys already known; a token
    whose key isn't known while the last fetch failed is a 503 (the key may well exist),
    and one whose key isn't in a freshly fetched set is a 401.
    """

    def __init__(
        self,
        url: str,
        *,
        cache_seconds: int = 300,
        min_refetch_seconds: float = 10.0,
        timeout_s: float = 2.0,
        failure_backoff_s: float = 5.0,
    ) -> None:
        self._url = url
        self._cache_seconds = cache_seconds
        self._min_refetch_seconds = min_refetch_seconds
        self._timeout_s = timeout_s
        self._failure_backoff_s = failure_backoff_s
        self._keys: dict[str, RSAPublicKey] = {}
        self._on_withdrawn: list[Callable[[], None]] = []
        self._fetched_at = -math.inf  # last successful fetch (monotonic)
        self._failed_at = -math.inf  # last failed fetch (monotonic)
        self._lock = asyncio.Lock()

    def _wants_fetch(self, kid: str | None) -> bool:
        now = time.monotonic()
        if now - self._failed_at < self._failure_backoff_s:
            return False
        if now - self._fetched_at > self._cache_seconds:
            return True
        # Bounded, so tokens with made-up kids can't turn every request into a fetch.
        return kid not in self._keys and now - self._fetched_at > self._min_refetch_seconds

    async def key_for(self, kid: str | None) -> Any:
        if self._wants_fetch(kid):
            async with self._lock:
                if self._wants_fetch(kid):  # re-check: the request that held the lock may just have fetched
                    await self._fetch()
        try:
            return _key_by_id(self._keys, kid)
        except Unauthorized:
            if self._failed_at > self._fetched_at:
                raise ServiceUnavailable(
                    "signing keys are unavailable", retry_after_s=math.ceil(self._failure_backoff_s)
                ) from None
            raise

    async def _fetch(self) -> None:
        try:
            async with asyncio.timeout(self._timeout_s):  # in total: a slow trickle can't hold the lock longer
                async with httpx.AsyncClient(timeout=self._timeout_s) as client:
                    response = await client.get(self._url)
                    response.raise_for_status()
                    keys = rsa_public_keys(response.content)
        except (httpx.HTTPError, TimeoutError, MalformedKeySet) as exc:
            self._failed_at = time.monotonic()
            log.warning(
                "JWKS fetch failed; keeping the keys known", url=self._url, error=repr(exc), known=len(self._keys)
            )
            return
        withdrawn = [
            kid
            for kid, key in self._keys.items()
            if kid not in keys or keys[kid].public_numbers() != key.public_numbers()
        ]
        self._keys = keys
        self._fetched_at = time.monotonic()
        if withdrawn:
            log.info("JWKS keys withdrawn; tokens they verified are verified again", kids=withdrawn)
            for forget in self._on_withdrawn:
                forget()

    def on_withdrawn(self, forget: Callable[[], None]) -> None:
        """Call ``forget`` when a fetch finds a key known before gone or changed: what it verified is no longer
        to be believed (a withdrawn key may be a compromised one)."""
        self._on_withdrawn.append(forget)


class AccessTokenVerifier:
    """Verifies RS256 user access tokens. Only RS256 is accepted: no ``none``, no HMAC confusion.

    Verified tokens are cached (:class:`VerifiedTokens`): a hit costs a dict
    lookup and a clock read.
    """

    def __init__(self, keys: KeySource, *, issuer: str, audience: str, cache_size: int = 10_000) -> None:
        self._keys = keys
        self._issuer = issuer
        self._audience = audience
        self._verified = VerifiedTokens(cache_size)
        # A key the issuer withdrew verifies nothing more: the tokens it verified are verified again (and
        # refused). Static key sources never withdraw one.
        if isinstance(keys, JwksKeySource):
            keys.on_withdrawn(self._verified.clear)

    def cached(self, authorization: bytes) -> Principal | None:
        """The principal of an ``Authorization`` header verified before, not expired; no coroutine on the hot path."""
        return self._verified.get(authorization)

    async def verify(self, authorization: bytes | None) -> Principal:
        """The principal of an ``Authorization: Bearer`` header: verified once, then answered from the cache."""
        if authorization is None:
            raise missing_token()
        principal = self._verified.get(authorization)
        if principal is None:
            principal, expires_at = await self._verify(bearer_token(authorization))
            self._verified.put(authorization, principal, expires_at)
        return principal

    async def _verify(self, token: str) -> tuple[Principal, float]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise Unauthorized("malformed token") from None
        if header.get("alg") != "RS256":
            raise Unauthorized("token algorithm not accepted")
        key = await self._keys.key_for(header.get("kid"))
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=["RS256"],
                issuer=self._issuer,
                audience=self._audience,
                leeway=LEEWAY_S,
                options={"require": ["exp", "iat", "sub", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("token expired") from None
        except jwt.InvalidTokenError as exc:
            raise Unauthorized(f"invalid token: {exc}") from None
        typed = typed_claims(claims, _AccessClaims)
        if typed.typ != "access":
            raise Unauthorized("not an access token")
        principal = Principal(subject=str(typed.sub), kind="user", roles=frozenset(typed.roles), token_id=typed.jti)
        return principal, typed.exp
