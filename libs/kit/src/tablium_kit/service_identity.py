"""Service identity: each service signs short-lived EdDSA tokens with its own key; callees verify them
against the trust store of services' public keys."""

from __future__ import annotations

import functools
import hashlib
import json
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import jwt
import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
    load_pem_public_key,
)
from jwt.utils import base64url_encode

from tablium_kit.errors import Unauthorized
from tablium_kit.settings import ServiceSettings
from tablium_kit.tokens import LEEWAY_S, Principal, VerifiedTokens, bearer_token, missing_token, typed_claims

SERVICE_TOKEN_ISSUER = "tablium-service"
SERVICE_TOKEN_ALGORITHM = "EdDSA"
# Verifiers refuse service tokens meant to live longer, whoever signed them.
MAX_SERVICE_TOKEN_TTL_S = 600
# The kid of a development key: "dev:<service>" (see ServiceTrust).
DEV_KID_PREFIX = "dev:"

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


def development_kid(service_name: str) -> str:
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
        return cls(service_name, key, kid=development_kid(service_name), ttl_seconds=ttl_seconds)

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
            raise missing_token()
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
        typed = typed_claims(claims, _ServiceClaims)
        if typed.sub != owner:
            raise Unauthorized("service token names another service than its key's owner")
        # Whoever signed it, a long-lived token would outlive a key's removal from the trust store.
        if typed.exp - typed.iat > MAX_SERVICE_TOKEN_TTL_S:
            raise Unauthorized("service token lives too long")
        return Principal(subject=f"service:{owner}", kind="service", roles=frozenset({"service"})), typed.exp
