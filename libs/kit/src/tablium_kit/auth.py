"""Authentication and authorization shared by every service.

Two kinds of bearer token reach a service:

* user access tokens: RS256 JWTs issued by the player service, verified with the
  public keys it publishes as a JWKS (fetched, cached, re-fetched on an unknown
  ``kid`` so key rotation needs no restart);
* service identity tokens: short-lived HS256 JWTs signed with the platform's
  service secret, accepted only on ``/internal`` routes.

Which one a route needs is declared once, in its OpenAPI security requirement
(:data:`BEARER` or :data:`SERVICE`); :class:`RouteAuthenticator` reads that same
declaration, so the documented contract and the enforced one cannot drift apart.
It runs as the application's ``before_request`` hook (after routing, before the
handler's arguments are resolved), or earlier when a kit guard needs the caller
(guards run before that hook), and on WebSocket routes as the :func:`authenticated`
guard. Handlers read the caller with :func:`caller` (no handler argument: Litestar
resolving one costs more than the whole authentication), or ``request.user``.
"""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Literal, Protocol, TypeVar

import httpx
import jwt
import msgspec
import structlog
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey, RSAPublicNumbers
from jwt.utils import from_base64url_uint
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.openapi.spec import Components, SecurityRequirement, SecurityScheme

from tablium_kit.errors import Forbidden, ServiceUnavailable, Unauthorized
from tablium_kit.net import request_context

BEARER: list[SecurityRequirement] = [{"BearerToken": []}]
SERVICE: list[SecurityRequirement] = [{"ServiceToken": []}]

SECURITY_COMPONENTS = Components(
    security_schemes={
        "BearerToken": SecurityScheme(
            type="http", scheme="bearer", bearer_format="JWT", description="RS256 access token"
        ),
        "ServiceToken": SecurityScheme(
            type="http", scheme="bearer", bearer_format="JWT", description="Service identity token (internal)"
        ),
    }
)

SERVICE_TOKEN_ISSUER = "tablium-service"
SERVICE_TOKEN_AUDIENCE = "tablium-internal"
LEEWAY_S = 5
ClaimsT = TypeVar("ClaimsT", bound=msgspec.Struct)
log = structlog.get_logger("tablium.auth")


def _missing_token() -> Unauthorized:
    return Unauthorized("missing bearer token", headers={"WWW-Authenticate": "Bearer"})


class Principal(msgspec.Struct, frozen=True):
    """Who is calling: a player (``subject`` = player id) or a service (``service:<name>``)."""

    subject: str
    kind: Literal["user", "service"]
    roles: frozenset[str] = frozenset()
    token_id: str | None = None

    def has_role(self, role: str) -> bool:
        return role in self.roles


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


class _ServiceClaims(msgspec.Struct):
    sub: str
    exp: float
    iat: float
    nbf: float | None = None


def _typed_claims(claims: dict[str, Any], kind: type[ClaimsT]) -> ClaimsT:
    try:
        return msgspec.convert(claims, kind, strict=True)
    except msgspec.ValidationError as exc:
        raise Unauthorized(f"invalid token: {exc}") from None


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
        self._keys = keys
        self._fetched_at = time.monotonic()


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

    def put(self, authorization: bytes, principal: Principal, expires_at: float) -> None:
        if len(self._entries) >= self._size:
            # Dicts keep insertion order: drop the oldest entry.
            del self._entries[next(iter(self._entries))]
        self._entries[authorization] = (principal, expires_at)


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

    def cached(self, authorization: bytes) -> Principal | None:
        """The principal of an ``Authorization`` header verified before, not expired; no coroutine on the hot path."""
        return self._verified.get(authorization)

    async def verify(self, authorization: bytes | None) -> Principal:
        """The principal of an ``Authorization: Bearer`` header: verified once, then answered from the cache."""
        if authorization is None:
            raise _missing_token()
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
        typed = _typed_claims(claims, _AccessClaims)
        if typed.typ != "access":
            raise Unauthorized("not an access token")
        principal = Principal(subject=str(typed.sub), kind="user", roles=frozenset(typed.roles), token_id=typed.jti)
        return principal, typed.exp


class ServiceTokens:
    """Issues and verifies service identity tokens for ``/internal`` calls."""

    def __init__(self, secret: str, *, service_name: str, ttl_seconds: int = 300, cache_size: int = 1_000) -> None:
        self._secret = secret
        self._service_name = service_name
        self._ttl = ttl_seconds
        self._cached: tuple[str, float] | None = None
        # A calling service reuses its token for half its lifetime (see ``token``), so
        # internal routes see the same few tokens over and over: verify each once.
        self._verified = VerifiedTokens(cache_size)

    def token(self) -> str:
        """A token for calls made by this service (reused until close to expiry)."""
        now = time.time()
        if self._cached and self._cached[1] - now > self._ttl / 2:
            return self._cached[0]
        claims = {
            "iss": SERVICE_TOKEN_ISSUER,
            "aud": SERVICE_TOKEN_AUDIENCE,
            "sub": f"service:{self._service_name}",
            "iat": int(now),
            "exp": int(now) + self._ttl,
            "jti": uuid.uuid4().hex,
        }
        encoded = jwt.encode(claims, self._secret, algorithm="HS256")
        self._cached = (encoded, now + self._ttl)
        return encoded

    def verify(self, authorization: bytes | None) -> Principal:
        """The principal of an ``Authorization: Bearer`` header: verified once, then answered from the cache."""
        if authorization is None:
            raise _missing_token()
        principal = self._verified.get(authorization)
        if principal is None:
            principal, expires_at = self._verify(bearer_token(authorization))
            self._verified.put(authorization, principal, expires_at)
        return principal

    def _verify(self, token: str) -> tuple[Principal, float]:
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=["HS256"],
                issuer=SERVICE_TOKEN_ISSUER,
                audience=SERVICE_TOKEN_AUDIENCE,
                leeway=LEEWAY_S,
                options={"require": ["exp", "iat", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("service token expired") from None
        except jwt.InvalidTokenError:
            raise Unauthorized("invalid service token") from None
        typed = _typed_claims(claims, _ServiceClaims)
        if not typed.sub.startswith("service:"):
            raise Unauthorized("not a service token")
        return Principal(subject=typed.sub, kind="service", roles=frozenset({"service"})), typed.exp


def required_schemes(handler: BaseRouteHandler) -> frozenset[str]:
    """The security schemes a route declares (``BearerToken``, ``ServiceToken``); empty when public."""
    resolve = getattr(handler, "resolve_security", None)
    if resolve is None:  # websocket and ASGI handlers declare security through opt
        return frozenset(handler.opt.get("security_schemes", ()))
    return frozenset(name for requirement in resolve() for name in requirement)


def bearer_token(authorization: bytes) -> str:
    """The token of an ``Authorization: Bearer`` header value."""
    scheme, _, token = authorization.decode("latin-1").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    raise _missing_token()


def caller() -> Principal:
    """Who is calling: the principal the route's declared security authenticated.

    Raises :class:`Unauthorized` on a public route (no principal). Costs a context
    variable read, where a handler argument (``request``, a dependency) costs
    Litestar's argument resolution on every request.
    """
    request = request_context.get()
    if request is None or request.caller is None:
        raise Unauthorized("authentication required")
    principal: Principal = request.caller
    return principal


class RouteAuthenticator:
    """Authenticates a connection as its route's security requirement says, once per connection.

    Puts the :class:`Principal` in ``scope["user"]`` (``request.user``) and in the
    context read by :func:`caller`; a public route gets no principal. Failures are
    :class:`Unauthorized`, answered as problem+json by the application's error handling.
    """

    def __init__(self, access: AccessTokenVerifier, services: ServiceTokens) -> None:
        self.access = access
        self.services = services
        # A route's security never changes after start-up: resolved once per handler.
        self._schemes: dict[int, frozenset[str]] = {}

    # Litestar's ``before_request`` hook (returning None lets the handler run), and what guards call.
    async def __call__(self, connection: ASGIConnection[Any, Any, Any, Any]) -> None:
        request = request_context.get()
        if request is None:  # outside the kit's layer: nothing to authenticate against
            raise Unauthorized("authentication required")
        if request.authenticated:
            return  # a guard needed the caller first
        handler = connection.scope["route_handler"]
        schemes = self._schemes.get(id(handler))
        if schemes is None:
            schemes = self._schemes[id(handler)] = required_schemes(handler)
        authorization = request.authorization
        if "ServiceToken" in schemes:
            request.caller = self.services.verify(authorization)
        elif "BearerToken" in schemes:
            cached = self.access.cached(authorization) if authorization is not None else None
            request.caller = cached or await self.access.verify(authorization)
        if request.caller is not None:
            connection.scope["user"] = request.caller
        request.authenticated = True


async def authenticated(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Guard authenticating a connection by its route's declared security.

    HTTP routes need no guard (the kit's ``before_request`` hook does it); a WebSocket
    route declaring security must carry this guard, or the service refuses to start.
    """
    authenticator: RouteAuthenticator = connection.app.state.authenticator
    await authenticator(connection)


Guard = Callable[[ASGIConnection[Any, Any, Any, Any], BaseRouteHandler], Awaitable[None]]
# The kit's role and service guards, which authenticate before they check (see ``authenticates``).
_AUTHENTICATING_GUARDS: set[Guard] = set()


def authenticates(guard: Any) -> bool:
    """Whether a guard authenticates the connection itself (``authenticated`` and the kit's role/service guards)."""
    return guard is authenticated or guard in _AUTHENTICATING_GUARDS


def requires_roles(*roles: str) -> Guard:
    """A guard letting through users holding at least one of ``roles``."""

    wanted = frozenset(roles)

    async def guard(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
        await authenticated(connection, handler)  # guards run before the kit's before_request hook
        principal = connection.scope.get("user")
        if not isinstance(principal, Principal) or not (principal.roles & wanted):
            raise Forbidden(f"requires one of the roles: {', '.join(sorted(wanted))}")

    _AUTHENTICATING_GUARDS.add(guard)
    return guard


def requires_service(*names: str) -> Guard:
    """A guard letting through service tokens of the named services (any service if none named)."""

    allowed = {f"service:{name}" for name in names}

    async def guard(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
        await authenticated(connection, handler)
        principal = connection.scope.get("user")
        if not isinstance(principal, Principal) or principal.kind != "service":
            raise Forbidden("internal route: service token required")
        if allowed and principal.subject not in allowed:
            raise Forbidden("this service may not call this route")

    _AUTHENTICATING_GUARDS.add(guard)
    return guard
