"""User tokens are verified with keys fetched from the issuer's JWKS: key rotation needs no restart, and
an issuer that is slow, down or publishing garbage costs requests a bounded wait and a 503, never a 500.

The issuer is a real HTTP server on 127.0.0.1, on a thread and event loop of its own (as a remote issuer
would be: Litestar's test client blocks the test's loop while the application answers).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from litestar import get
from litestar.testing import AsyncTestClient

from tablium_kit.app import ServiceDefinition, create_service_app
from tablium_kit.auth import BEARER, AccessTokenVerifier, JwksKeySource, caller
from tablium_kit.errors import ServiceUnavailable, Unauthorized
from tablium_kit.settings import ServiceSettings

P1 = "00000000-0000-4000-8000-000000000001"


def bearer(token: str) -> bytes:
    """The Authorization header value a client sends with ``token``."""
    return f"Bearer {token}".encode()


class Issuer:
    """Serves a JWKS over real HTTP and counts the requests; it can hang or publish a body of the test's choice."""

    def __init__(self) -> None:
        self.keys: dict[str, rsa.RSAPrivateKey] = {}
        self.requests = 0
        self.hang = False
        self.body: bytes | None = None  # instead of the key set
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="jwks-issuer", daemon=True)
        self._connections: set[asyncio.Task[Any]] = set()
        self._server: asyncio.Server | None = None

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

    def start(self) -> None:
        self._thread.start()
        self._run(self._listen())

    def stop(self) -> None:
        self._run(self._close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    def _run(self, step: Coroutine[Any, Any, None]) -> None:
        asyncio.run_coroutine_threadsafe(step, self._loop).result(timeout=10)

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}/api/v1/auth/jwks"

    async def _close(self) -> None:
        assert self._server is not None
        self._server.close()
        for connection in list(self._connections):
            connection.cancel()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            await reader.readuntil(b"\r\n\r\n")
            self.requests += 1
            if self.hang:
                await asyncio.Event().wait()  # until the server stops
            body = self.jwks() if self.body is None else self.body
            head = f"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
            writer.write(head.encode() + b"connection: close\r\n\r\n" + body)
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._connections.discard(task)
            writer.close()


@pytest.fixture
def issuer() -> Iterator[Issuer]:
    server = Issuer()
    server.start()
    yield server
    server.stop()


def verifier(source: JwksKeySource) -> AccessTokenVerifier:
    return AccessTokenVerifier(source, issuer="tablium-player", audience="tablium")


async def test_keys_are_cached_and_rotation_is_picked_up(issuer: Issuer) -> None:
    issuer.add_key("k1")
    check = verifier(JwksKeySource(issuer.url, cache_seconds=300, min_refetch_seconds=0))
    for _ in range(5):
        assert (await check.verify(bearer(issuer.token("k1")))).subject == P1
    assert issuer.requests == 1  # cached

    issuer.add_key("k2")  # the issuer rotates
    assert (await check.verify(bearer(issuer.token("k2")))).subject == P1
    assert issuer.requests == 2  # an unknown kid triggered one re-fetch


async def test_a_token_verified_before_its_key_was_withdrawn_is_refused_after(issuer: Issuer) -> None:
    """The verified-token cache answers a token for its whole life; a key the issuer withdraws (compromised,
    say) must not keep its tokens in service until they expire."""
    issuer.add_key("k1")
    issuer.add_key("k2")
    check = verifier(JwksKeySource(issuer.url, cache_seconds=0, min_refetch_seconds=0))
    by_k1 = bearer(issuer.token("k1"))
    assert (await check.verify(by_k1)).subject == P1
    assert check.cached(by_k1) is not None
    del issuer.keys["k1"]
    assert (await check.verify(bearer(issuer.token("k2")))).subject == P1  # a fetch, which finds k1 gone
    assert check.cached(by_k1) is None
    with pytest.raises(Unauthorized):
        await check.verify(by_k1)


async def test_a_key_kept_by_a_fetch_keeps_its_tokens_cached(issuer: Issuer) -> None:
    issuer.add_key("k1")
    check = verifier(JwksKeySource(issuer.url, cache_seconds=0, min_refetch_seconds=0))
    by_k1 = bearer(issuer.token("k1"))
    await check.verify(by_k1)
    issuer.add_key("k2")
    await check.verify(bearer(issuer.token("k2")))
    assert check.cached(by_k1) is not None


async def test_a_key_unknown_after_a_successful_fetch_is_401(issuer: Issuer) -> None:
    issuer.add_key("k1")
    check = verifier(JwksKeySource(issuer.url))
    stranger = Issuer()
    stranger.add_key("k9")
    with pytest.raises(Unauthorized):
        await check.verify(bearer(stranger.token("k9")))


async def test_concurrent_first_verifications_make_one_fetch(issuer: Issuer) -> None:
    issuer.add_key("k1")
    check = verifier(JwksKeySource(issuer.url))
    # Different tokens (so the verified-token cache can't answer for the others), all verified at once.
    tokens = [bearer(issuer.token("k1", jti=str(n))) for n in range(50)]
    principals = await asyncio.gather(*(check.verify(token) for token in tokens))
    assert {p.subject for p in principals} == {P1}
    assert issuer.requests == 1  # single-flight: the 49 others waited for the first fetch and re-checked


async def _timed(call: Awaitable[Any]) -> tuple[float, BaseException | None]:
    started = time.monotonic()
    try:
        await call
    except Exception as exc:
        return time.monotonic() - started, exc
    return time.monotonic() - started, None


async def test_a_hanging_issuer_answers_every_request_within_the_timeout_then_stops_being_asked(
    issuer: Issuer,
) -> None:
    issuer.add_key("k1")
    issuer.hang = True
    check = verifier(JwksKeySource(issuer.url, timeout_s=0.5, failure_backoff_s=30))
    tokens = [bearer(issuer.token("k1", jti=str(n))) for n in range(20)]
    outcomes = await asyncio.wait_for(asyncio.gather(*(_timed(check.verify(t)) for t in tokens)), timeout=10)
    # Each waited for the one fetch, not for one timeout after another (20 of 0.5 s): bounds far apart, so
    # a busy machine does not decide the outcome.
    assert max(elapsed for elapsed, _ in outcomes) < 5.0, outcomes
    assert all(isinstance(error, ServiceUnavailable) for _, error in outcomes), outcomes
    assert issuer.requests == 1
    # Negative caching: for a while, the issuer isn't asked again, and requests are answered at once.
    elapsed, error = await _timed(check.verify(bearer(issuer.token("k1", jti="later"))))
    assert isinstance(error, ServiceUnavailable)
    assert elapsed < 0.5  # not another timeout's wait (and the issuer was not asked: below)
    assert error.headers == {"Retry-After": "30"}
    assert issuer.requests == 1


async def test_a_hanging_issuer_keeps_the_known_keys_in_service(issuer: Issuer) -> None:
    issuer.add_key("k1")
    # A timeout a busy machine's first fetch fits in; the issuer's hang is endless, so any bound tells them apart.
    check = verifier(JwksKeySource(issuer.url, cache_seconds=0, timeout_s=2.0))
    assert (await check.verify(bearer(issuer.token("k1")))).subject == P1
    issuer.hang = True  # the cache is stale at once; the refresh times out; the key known still verifies
    elapsed, error = await _timed(check.verify(bearer(issuer.token("k1", jti="2"))))
    assert error is None
    assert elapsed < 8.0  # the refresh's timeout, not the issuer's hang


async def test_an_issuer_back_after_the_backoff_is_asked_again(issuer: Issuer) -> None:
    issuer.add_key("k1")
    issuer.body = b"<html>maintenance</html>"
    check = verifier(JwksKeySource(issuer.url, failure_backoff_s=0.2))
    with pytest.raises(ServiceUnavailable):
        await check.verify(bearer(issuer.token("k1")))
    issuer.body = None
    await asyncio.sleep(0.3)
    assert (await check.verify(bearer(issuer.token("k1")))).subject == P1
    assert issuer.requests == 2


def _rsa_jwk(**members: Any) -> dict[str, Any]:
    return {"kty": "RSA", "kid": "k1", "use": "sig", **members}


MALFORMED = {
    "not JSON": b"<html>maintenance</html>",
    "a list": b"[]",
    "keys not a list": b'{"keys": {"kid": "k1"}}',
    "a key not an object": b'{"keys": ["k1"]}',
    "kid not a string": json.dumps({"keys": [_rsa_jwk(kid=1, n="AQAB", e="AQAB")]}).encode(),
    "no modulus": json.dumps({"keys": [_rsa_jwk(e="AQAB")]}).encode(),
    "modulus not base64url": json.dumps({"keys": [_rsa_jwk(n="!!!", e="AQAB")]}).encode(),
    "modulus a number": json.dumps({"keys": [_rsa_jwk(n=12345, e="AQAB")]}).encode(),
    "a toy key": json.dumps({"keys": [_rsa_jwk(n="1w", e="AQAB")]}).encode(),
    "a private key only": json.dumps({"keys": [_rsa_jwk(d="AQAB", p="AQAB")]}).encode(),
}


@pytest.mark.parametrize("body", MALFORMED.values(), ids=MALFORMED.keys())
async def test_a_malformed_key_set_is_unavailable_not_an_error(issuer: Issuer, body: bytes) -> None:
    issuer.add_key("k1")
    issuer.body = body
    with pytest.raises(ServiceUnavailable):
        await verifier(JwksKeySource(issuer.url)).verify(bearer(issuer.token("k1")))


async def test_issuer_down_is_503() -> None:
    check = verifier(JwksKeySource("http://127.0.0.1:9/jwks"))
    state = Issuer()
    state.add_key("k1")
    with pytest.raises(ServiceUnavailable, match="unavailable"):
        await check.verify(bearer(state.token("k1")))


@get("/me", security=BEARER)
async def me() -> dict[str, str]:
    return {"subject": caller().subject}


@pytest.fixture
async def service_of(
    make_database: Callable[[str], Awaitable[str]],
) -> AsyncIterator[Callable[[JwksKeySource], AsyncTestClient]]:
    settings = ServiceSettings.from_env(
        "jwks", {"TABLIUM_JWKS_DATABASE_URL": await make_database("jwks"), "TABLIUM_ENVIRONMENT": "test"}
    )
    clients: list[AsyncTestClient] = []

    def make(source: JwksKeySource) -> AsyncTestClient:
        app = create_service_app(
            ServiceDefinition(settings=settings, title="jwks", route_handlers=[me], key_source=source)
        )
        clients.append(AsyncTestClient(app=app))
        return clients[-1]

    yield make
    for client in clients:
        await client.__aexit__(None, None, None)


async def test_over_http_a_malformed_key_set_is_a_503_problem_with_retry_after(
    issuer: Issuer, service_of: Callable[[JwksKeySource], AsyncTestClient]
) -> None:
    issuer.add_key("k1")
    issuer.body = json.dumps({"keys": [_rsa_jwk(n=12345, e="AQAB")]}).encode()
    client = await service_of(JwksKeySource(issuer.url)).__aenter__()
    response = await client.get("/me", headers={"Authorization": f"Bearer {issuer.token('k1')}"})
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.headers["retry-after"].isdigit()
    issuer.body = None  # a proper key set, but the token's key isn't in it: 401
    client = await service_of(JwksKeySource(issuer.url)).__aenter__()
    issuer.add_key("k2")
    stranger = issuer.token("k2")
    del issuer.keys["k2"]
    response = await client.get("/me", headers={"Authorization": f"Bearer {stranger}"})
    assert response.status_code == 401, response.text
