"""Access and refresh tokens.

Access tokens are short-lived RS256 JWTs any service verifies offline with the
published JWKS. Refresh tokens are opaque random strings; only their SHA-256 is
stored. Each refresh rotates the token; presenting an already-rotated token
means it was stolen or replayed, so the whole family is revoked (OAuth 2.0
Security BCP, refresh token rotation with reuse detection).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from jwt.algorithms import RSAAlgorithm

ACCESS_TOKEN_TYPE = "access"


def key_id(public_key: RSAPublicKey) -> str:
    """RFC 7638 JWK thumbprint: the same key always gets the same ``kid``."""
    jwk = json.loads(RSAAlgorithm.to_jwk(public_key))
    canonical = json.dumps({k: jwk[k] for k in ("e", "kty", "n")}, separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()


@dataclass(frozen=True)
class SigningKeys:
    """The current signing key plus retired public keys still accepted until their tokens expire."""

    private_key: RSAPrivateKey
    retired: tuple[RSAPublicKey, ...] = ()

    @property
    def kid(self) -> str:
        return key_id(self.private_key.public_key())

    def public_keys(self) -> dict[str, RSAPublicKey]:
        keys = {key_id(k): k for k in self.retired}
        keys[self.kid] = self.private_key.public_key()
        return keys

    def jwks(self) -> dict[str, Any]:
        documents = []
        for kid, key in self.public_keys().items():
            jwk = json.loads(RSAAlgorithm.to_jwk(key))
            jwk.update({"kid": kid, "use": "sig", "alg": "RS256"})
            documents.append(jwk)
        return {"keys": documents}


def issue_access_token(
    keys: SigningKeys,
    *,
    player_id: str,
    username: str,
    roles: list[str],
    issuer: str,
    audience: str,
    now: int,
    ttl_s: int,
) -> str:
    claims = {
        "iss": issuer,
        "aud": audience,
        "sub": player_id,
        "iat": now,
        "nbf": now,
        "exp": now + ttl_s,
        "jti": uuid.uuid4().hex,
        "typ": ACCESS_TOKEN_TYPE,
        "name": username,
        "roles": roles,
    }
    return jwt.encode(claims, keys.private_key, algorithm="RS256", headers={"kid": keys.kid})


def new_refresh_secret() -> str:
    return secrets.token_urlsafe(32)


def refresh_token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
