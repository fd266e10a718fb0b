"""Player access tokens for tests: the claims the player service issues, signed with a test's own RSA key.

Services verify them like real ones when their key source trusts ``issuer.public_keys()`` (or a JWKS
document of them: ``tablium_kit.service_processes.serve_jwks``).
"""

from __future__ import annotations

import time
import uuid

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa


class AccessTokenIssuer:
    def __init__(self, kid: str, key: rsa.RSAPrivateKey | None = None, *, ttl_s: int = 600) -> None:
        self.kid = kid
        self.key = key or rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.ttl_s = ttl_s

    def public_keys(self) -> dict[str, rsa.RSAPublicKey]:
        return {self.kid: self.key.public_key()}

    def token(self, subject: str, roles: list[str] | None = None) -> str:
        now = int(time.time())
        claims = {
            "iss": "tablium-player",
            "aud": "tablium",
            "sub": subject,
            "iat": now,
            "exp": now + self.ttl_s,
            "typ": "access",
            "roles": roles or ["player"],
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": self.kid})

    def bearer(self, subject: str, roles: list[str] | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(subject, roles)}"}
