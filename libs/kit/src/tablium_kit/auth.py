"""Authentication and authorization shared by every service.

Two kinds of bearer token reach a service:

* user access tokens: RS256 JWTs issued by the player service, verified with the
  public keys it publishes as a JWKS (fetched, cached, re-fetched on an unknown
  ``kid`` so key rotation needs no restart);
* service identity tokens: short-lived EdDSA JWTs each service signs with its own
  key (:class:`ServiceTokens`), for one callee, verified against the trust store of
  services' public keys (:class:`ServiceTrust`), accepted only on internal routes
  and only from the services the route names.

Which one a route needs is declared once, in its OpenAPI security requirement
(:data:`BEARER` or :func:`from_services`); :class:`RouteAuthenticator` reads that same
declaration, so the documented contract and the enforced one cannot drift apart.
It runs as the application's ``before_request`` hook (after routing, before the
handler's arguments are resolved), or earlier when a kit guard needs the caller
(guards run before that hook), and on WebSocket routes as the :func:`authenticated`
guard. Handlers read the caller with :func:`caller` (no handler argument: Litestar
resolving one costs more than the whole authentication), or ``request.user``.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import math
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar

import httpx
import jwt
import msgspec
import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey, RSAPublicNumbers
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
    load_pem_public_key,
)
from jwt.utils import base64url_encode, from_base64url_uint
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.openapi.spec import Components, SecurityRequirement, SecurityScheme

from tablium_kit.errors import Forbidden, ServiceUnavailable, Unauthorized
from tablium_kit.net import request_context
from tablium_kit.settings import ServiceSettings

BEARER: list[SecurityRequirement] = [{"BearerToken": []}]


def from_services(*names: str) -> list[SecurityRequirement]:
    """The security of an internal route: a service token from one of the services ``names``.

    OpenAPI 3.1 lets a requirement of a non-OAuth scheme list roles; these are the
    services, so the document says who may call, and :class:`RouteAuthenticator`
    enforces exactly that (any other service is a 403). Requirements on several layers
    (controller and route) add up, as alternatives do in OpenAPI. A route declaring
    ``ServiceToken`` without names refuses to start: no internal route takes any service.
    """
    if not names:
        raise ValueError("an internal route names the services it accepts")
    return [{"ServiceToken": sorted(names)}]


SECURITY_COMPONENTS = Components(
    security_schemes={
        "BearerToken": SecurityScheme(
            type="http", scheme="bearer", bearer_format="JWT", description="RS256 access token"
        ),
        "ServiceToken": SecurityScheme(
            type="http",
            scheme="bearer",
            bearer_format="JWT",
            description="EdDSA service identity token (internal); a requirement's list names the services accepted",
        ),
    }
)

SERVICE_TOKEN_ISSUER = "tablium-service"
SERVICE_TOKEN_ALGORITHM = "EdDSA"
# Verifiers refuse service tokens meant to live longer, whoever signed them.
MAX_SERVICE_TOKEN_TTL_S = 600
# The kid of a development key: "dev:<service>" (see ServiceTrust).
DEV_KID_PREFIX = "dev:"
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


# -- Service identity ------------------------------------------------------------------------------
#
# Each service signs its own identity tokens with its own Ed25519 key; a callee knows every caller's
# public keys (the trust store, from settings) and so which service a key belongs to. A token names its
# caller (``sub``) and its callee (``aud``), and is refused unless ``sub`` is the owner of the key that
# signed it: holding one service's key lets you speak as that service only, and to whom you address.


def development_service_key(service_name: str) -> Ed25519PrivateKey:
    """The development-only key of ``service_name``, derived from the name.

    Anyone can compute it (that is the point: development and tests need no key material), so
    production refuses to run without a key of its own and a trust store of real keys.
    """
    seed = hashlib.sha256(f"tablium development-only service key: {service_name}".encode()).digest()
    return Ed25519PrivateKey.from_private_bytes(seed)


@functools.lru_cache(maxsize=64)
def _development_public_key(service_name: str) -> Ed25519PublicKey:
    return development_service_key(service_name).public_key()


def service_key_id(public_key: Ed25519PublicKey) -> str:
    """A key's ``kid``: its RFC 7638 JWK thumbprint, so ids need no configuration and never collide."""
    x = base64url_encode(public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()
    canonical = json.dumps({"crv": "Ed25519", "kty": "OKP", "x": x}, separators=(",", ":"), sort_keys=True)
    return base64url_encode(hashlib.sha256(canonical.encode()).digest()).decode()


def load_service_key(value: str) -> Ed25519PrivateKey:
    """An Ed25519 private key from a PKCS#8 PEM, or from the path of a file holding one."""
    pem = value if value.lstrip().startswith("-----BEGIN") else Path(value).read_text()
    key = load_pem_private_key(pem.encode(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("a service key must be an Ed25519 private key")
    return key


def load_service_public_key(pem: str) -> Ed25519PublicKey:
    key = load_pem_public_key(pem.encode())
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("a trusted service key must be an Ed25519 public key")
    return key


def _development_kid(service_name: str) -> str:
    return f"{DEV_KID_PREFIX}{service_name}"


def local_service_keys(service_names: Iterable[str], directory: Path) -> dict[str, str]:
    """Fresh keys for running services locally as production runs them (the dev platform, cross-service tests).

    Each service's private key goes to ``<directory>/<name>.pem`` (readable by its owner only); the
    environment returned gives each service its key (``TABLIUM_<NAME>_SERVICE_KEY``) and all of them
    the trust store (``TABLIUM_SERVICE_TRUST``). Production keys come from its secret store instead.
    """
    directory.mkdir(parents=True, exist_ok=True)
    env: dict[str, str] = {}
    trust: dict[str, list[str]] = {}
    for name in service_names:
        key = Ed25519PrivateKey.generate()
        path = directory / f"{name}.pem"
        path.touch(mode=0o600)
        path.chmod(0o600)  # touch keeps the mode of a file left by an earlier run
        path.write_bytes(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
        env[f"TABLIUM_{name.upper()}_SERVICE_KEY"] = str(path)
        trust[name] = [key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()]
    env["TABLIUM_SERVICE_TRUST"] = json.dumps(trust)
    return env


class ServiceTokens:
    """This service's identity tokens for the services it calls (``InternalClient`` sends them).

    EdDSA JWTs: ``sub`` this service, ``aud`` the callee, short-lived; one per callee, reused
    until half its lifetime is left, then re-minted.
    """

    def __init__(self, service_name: str, key: Ed25519PrivateKey, *, kid: str, ttl_seconds: int = 120) -> None:
        if not 0 < ttl_seconds <= MAX_SERVICE_TOKEN_TTL_S:
            raise ValueError(f"service tokens live 1 to {MAX_SERVICE_TOKEN_TTL_S} s, not {ttl_seconds}")
        self.service_name = service_name
        self.kid = kid
        self._key = key
        self._ttl = ttl_seconds
        self._cached: dict[str, tuple[str, float]] = {}

    @classmethod
    def from_settings(cls, settings: ServiceSettings) -> ServiceTokens:
        """The tokens of the service ``settings`` describe, signed with its ``service_key``
        (the development key when none is set, which production settings refuse)."""
        if not settings.service_key:
            return cls.development(settings.service_name, ttl_seconds=settings.service_token_ttl_s)
        key = load_service_key(settings.service_key)
        return cls(
            settings.service_name, key, kid=service_key_id(key.public_key()), ttl_seconds=settings.service_token_ttl_s
        )

    @classmethod
    def development(cls, service_name: str, *, ttl_seconds: int = 120) -> ServiceTokens:
        """Tokens signed with ``service_name``'s development key: accepted only by services whose trust
        store is empty, which only development and tests allow."""
        key = development_service_key(service_name)
        return cls(service_name, key, kid=_development_kid(service_name), ttl_seconds=ttl_seconds)

    def token(self, audience: str) -> str:
        """A token for calling the service ``audience``."""
        now = time.time()
        cached = self._cached.get(audience)
        if cached and cached[1] - now > self._ttl / 2:
            return cached[0]
        claims = {
            "iss": SERVICE_TOKEN_ISSUER,
            "sub": self.service_name,
            "aud": audience,
            "iat": int(now),
            "exp": int(now) + self._ttl,
            "jti": uuid.uuid4().hex,
        }
        encoded = jwt.encode(claims, self._key, algorithm=SERVICE_TOKEN_ALGORITHM, headers={"kid": self.kid})
        self._cached[audience] = (encoded, now + self._ttl)
        return encoded


class ServiceTrust:
    """Which public key belongs to which service: the trust store, by ``kid``.

    Several keys per service are normal while one rotates. Empty (development and tests
    only), it trusts every service's development key instead, under the ``kid``
    ``dev:<service>``; a trust store with keys in it never does.
    """

    def __init__(self, keys: Mapping[str, Sequence[Ed25519PublicKey]]) -> None:
        self._keys: dict[str, tuple[str, Ed25519PublicKey]] = {}
        for service_name, public_keys in keys.items():
            for key in public_keys:
                kid = service_key_id(key)
                owner = self._keys.get(kid, (service_name, key))[0]
                if owner != service_name:
                    raise ValueError(f"one key is trusted for both {owner} and {service_name}")
                self._keys[kid] = (service_name, key)
        self.development = not self._keys

    @classmethod
    def from_settings(cls, settings: ServiceSettings) -> ServiceTrust:
        return cls(
            {name: [load_service_public_key(pem) for pem in pems] for name, pems in settings.service_trust.items()}
        )

    def key_for(self, kid: str) -> tuple[str, Ed25519PublicKey]:
        """The service owning ``kid`` and the key itself."""
        found = self._keys.get(kid)
        if found is not None:
            return found
        if self.development and kid.startswith(DEV_KID_PREFIX):
            service_name = kid.removeprefix(DEV_KID_PREFIX)
            return service_name, _development_public_key(service_name)
        raise Unauthorized("service token signed with an unknown key")


class _ServiceClaims(msgspec.Struct):
    sub: str
    exp: float
    iat: float
    nbf: float | None = None


class ServiceTokenVerifier:
    """Verifies the service tokens addressed to this service (``aud``), by the trust store.

    The caller is the service owning the signing key, and the token must say so (``sub``).
    Verified tokens are cached like user tokens (:class:`VerifiedTokens`); which services a
    route accepts is checked afterwards, per route, by :class:`RouteAuthenticator`.
    """

    def __init__(self, service_name: str, trust: ServiceTrust, *, cache_size: int = 1_000) -> None:
        self._audience = service_name
        self._trust = trust
        self._verified = VerifiedTokens(cache_size)

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
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise Unauthorized("malformed service token") from None
        # Checked before any key is chosen: an HMAC token (the old shared secret) or "none" never gets further.
        if header.get("alg") != SERVICE_TOKEN_ALGORITHM:
            raise Unauthorized("service token algorithm not accepted")
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise Unauthorized("service token without a key id")
        owner, key = self._trust.key_for(kid)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[SERVICE_TOKEN_ALGORITHM],
                issuer=SERVICE_TOKEN_ISSUER,
                audience=self._audience,
                leeway=LEEWAY_S,
                options={"require": ["exp", "iat", "sub", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("service token expired") from None
        except jwt.InvalidAudienceError:
            raise Unauthorized("service token addressed to another service") from None
        except jwt.InvalidTokenError:
            raise Unauthorized("invalid service token") from None
        typed = _typed_claims(claims, _ServiceClaims)
        if typed.sub != owner:
            raise Unauthorized("service token names another service than its key's owner")
        # Whoever signed it, a long-lived token would outlive a key's removal from the trust store.
        if typed.exp - typed.iat > MAX_SERVICE_TOKEN_TTL_S:
            raise Unauthorized("service token lives too long")
        return Principal(subject=f"service:{owner}", kind="service", roles=frozenset({"service"})), typed.exp


def required_schemes(handler: BaseRouteHandler) -> frozenset[str]:
    """The security schemes a route declares (``BearerToken``, ``ServiceToken``); empty when public."""
    resolve = getattr(handler, "resolve_security", None)
    if resolve is None:  # websocket and ASGI handlers declare security through opt
        return frozenset(handler.opt.get("security_schemes", ()))
    return frozenset(name for requirement in resolve() for name in requirement)


def accepted_services(handler: BaseRouteHandler) -> frozenset[str]:
    """The services a route's ``ServiceToken`` requirements name (their union, as OpenAPI reads them)."""
    resolve = getattr(handler, "resolve_security", None)
    if resolve is None:  # websocket and ASGI handlers declare security through opt, without names
        return frozenset()
    return frozenset(name for requirement in resolve() for name in requirement.get("ServiceToken", ()))


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

    def __init__(self, access: AccessTokenVerifier, services: ServiceTokenVerifier) -> None:
        self.access = access
        self.services = services
        # A route's security never changes after start-up: resolved once per handler, with the
        # principals of the services it accepts.
        self._security: dict[int, tuple[frozenset[str], frozenset[str]]] = {}

    # Litestar's ``before_request`` hook (returning None lets the handler run), and what guards call.
    async def __call__(self, connection: ASGIConnection[Any, Any, Any, Any]) -> None:
        request = request_context.get()
        if request is None:  # outside the kit's layer: nothing to authenticate against
            raise Unauthorized("authentication required")
        if request.authenticated:
            return  # a guard needed the caller first
        handler = connection.scope["route_handler"]
        security = self._security.get(id(handler))
        if security is None:
            callers = frozenset(f"service:{name}" for name in accepted_services(handler))
            security = self._security[id(handler)] = (required_schemes(handler), callers)
        schemes, callers = security
        authorization = request.authorization
        if "ServiceToken" in schemes:
            principal = self.services.verify(authorization)
            if principal.subject not in callers:
                raise Forbidden("this service may not call this route")
            request.caller = principal
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
# The kit's role guards, which authenticate before they check (see ``authenticates``).
_AUTHENTICATING_GUARDS: set[Guard] = set()


def authenticates(guard: Any) -> bool:
    """Whether a guard authenticates the connection itself (``authenticated`` and the kit's role guards)."""
    return guard is authenticated or guard in _AUTHENTICATING_GUARDS


def authenticated_or(alternative: Callable[[ASGIConnection[Any, Any, Any, Any]], Awaitable[Principal | None]]) -> Guard:
    """A guard accepting, besides the route's declared security, another credential ``alternative`` checks.

    For WebSockets from browsers, which cannot send an ``Authorization`` header: ``alternative`` returns the
    principal of the connection's other credential (a short-lived ticket the service issued, say), raises
    :class:`Unauthorized` for a bad one, or returns None when the connection carries none, and then the
    declared security applies as with :func:`authenticated`.
    """

    async def guard(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
        request = request_context.get()
        if request is None:
            raise Unauthorized("authentication required")
        if request.authenticated:
            return
        principal = None if request.authorization is not None else await alternative(connection)
        if principal is None:
            await authenticated(connection, handler)
            return
        request.caller = principal
        request.authenticated = True
        connection.scope["user"] = principal

    _AUTHENTICATING_GUARDS.add(guard)
    return guard


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
