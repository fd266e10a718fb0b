"""The gateway and the services agree on a token's ``exp`` (issue 10, item 16): the gateway refused a string
``exp`` that the services took. The gateway verifies ``exp`` only, as ``gateway/kong.yml`` configures it."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from tablium_gateway.config import JwtConfig, JwtCredential
from tablium_gateway.jwt_auth import Authenticated, JwtAuthenticator
from tablium_kit.auth import AccessTokenVerifier, StaticKeySource
from tablium_kit.errors import Unauthorized

KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
# A day ahead: the suite may run these long after collection (xdist), and a token must not expire meanwhile.
NOW = int(time.time())


def _token(**claims: Any) -> str:
    body = {
        "iss": "tablium-player",
        "aud": "tablium",
        "sub": "00000000-0000-4000-8000-000000000001",
        "iat": NOW,
        "exp": NOW + 86_400,
        "typ": "access",
        "roles": ["player"],
        **claims,
    }
    return jwt.encode(body, KEY, algorithm="RS256", headers={"kid": "k"})


def _gateway_accepts(token: str) -> bool:
    credential = JwtCredential(consumer="player", key="tablium-player", algorithm="RS256", public_key=KEY.public_key())
    authenticator = JwtAuthenticator({"tablium-player": credential})
    conf = JwtConfig(claims_to_verify=frozenset({"exp"}))
    return isinstance(authenticator.authenticate(conf, {"authorization": f"Bearer {token}"}, ""), Authenticated)


async def _service_accepts(token: str) -> bool:
    verifier = AccessTokenVerifier(
        StaticKeySource({"k": KEY.public_key()}), issuer="tablium-player", audience="tablium"
    )
    try:
        await verifier.verify(f"Bearer {token}".encode())
    except Unauthorized:
        return False
    return True


@pytest.mark.parametrize(
    "claims",
    [
        {},
        {"exp": NOW + 86_400.5},
        {"exp": str(NOW + 86_400)},
        {"exp": True},
        {"exp": None},
        {"exp": [NOW + 300]},
        {"exp": NOW - 60},
    ],
    # Names without the time, so every pytest-xdist worker collects the same ids.
    ids=["no-exp", "fractional", "string", "bool", "null", "list", "expired"],
)
async def test_gateway_and_services_agree_on_exp(claims: dict[str, Any]) -> None:
    token = _token(**claims)
    assert _gateway_accepts(token) == await _service_accepts(token), claims
