"""User tokens are verified with keys fetched from the issuer's JWKS, and key rotation needs no restart."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from tablium_kit.auth import AccessTokenVerifier, JwksKeySource
from tablium_kit.errors import Unauthorized

P1 = "00000000-0000-4000-8000-000000000001"


def bearer(token: str) -> bytes:
    """The Authorization header value a client sends with ``token``."""
    return f"Bearer {token}".encode()


class Issuer:
    """Serves a JWKS over real HTTP on 127.0.0.1 and counts fetches."""

    def __init__(self) -> None:
        self.keys: dict[str, rsa.RSAPrivateKey] = {}
        self.fetches = 0

    def add_key(self, kid: str) -> rsa.RSAPrivateKey:
        self.keys[kid] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return self.keys[kid]

    def jwks(self) -> bytes:
        docs = []
        for kid, key in self.keys.items():
            jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
            docs.append({**jwk, "kid": kid, "alg": "RS256", "use": "sig"})
        return json.dumps({"keys": docs}).encode()

    def token(self, kid: str, **claims: Any) -> str:
        now = int(time.time())
        body = {"iss": "tablium-player", "aud": "tablium", "sub": P1, "iat": now, "exp": now + 60, "typ": "access"}
        return jwt.encode({**body, **claims}, self.keys[kid], algorithm="RS256", headers={"kid": kid})


@pytest.fixture
def issuer() -> Iterator[tuple[Issuer, str]]:
    state = Issuer()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.fetches += 1
            body = state.jwks()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state, f"http://127.0.0.1:{server.server_address[1]}/api/v1/auth/jwks"
    server.shutdown()


async def test_keys_are_cached_and_rotation_is_picked_up(issuer: tuple[Issuer, str]) -> None:
    state, url = issuer
    state.add_key("k1")
    verifier = AccessTokenVerifier(
        JwksKeySource(url, cache_seconds=300, min_refetch_seconds=0), issuer="tablium-player", audience="tablium"
    )
    for _ in range(5):
        assert (await verifier.verify(bearer(state.token("k1")))).subject == P1
    assert state.fetches == 1  # cached

    state.add_key("k2")  # the issuer rotates
    assert (await verifier.verify(bearer(state.token("k2")))).subject == P1
    assert state.fetches == 2  # an unknown kid triggered one re-fetch


async def test_unknown_key_is_rejected(issuer: tuple[Issuer, str]) -> None:
    state, url = issuer
    state.add_key("k1")
    verifier = AccessTokenVerifier(JwksKeySource(url), issuer="tablium-player", audience="tablium")
    stranger = Issuer()
    stranger.add_key("k9")
    with pytest.raises(Unauthorized):
        await verifier.verify(bearer(stranger.token("k9")))


async def test_issuer_down_means_401_not_500() -> None:
    verifier = AccessTokenVerifier(
        JwksKeySource("http://127.0.0.1:9/jwks"), issuer="tablium-player", audience="tablium"
    )
    state = Issuer()
    state.add_key("k1")
    with pytest.raises(Unauthorized, match="unavailable"):
        await verifier.verify(bearer(state.token("k1")))
