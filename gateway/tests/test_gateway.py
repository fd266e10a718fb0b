"""The development gateway serving the repo's kong.yml, in front of a fake upstream."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import gc
import hashlib
import hmac
import json
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from tablium_gateway.app import Gateway
from tablium_gateway.config import GatewayConfig, RateLimitConfig, load_config, parse_config
from tablium_gateway.forwarding import drain_body

from .conftest import BIG_BODY_SIZE, DEV_KEYS, EchoUpstream, FakeClock, assert_problem, make_token

CLIENT_IP = "203.0.113.7"
NO_ROUTE = "no Route matched with those values"

GatewayFactory = Callable[..., httpx.AsyncClient]


@pytest.fixture
async def gateway_for(upstream: EchoUpstream, kong_yml: Path) -> AsyncIterator[GatewayFactory]:
    gateways: list[Gateway] = []
    clients: list[httpx.AsyncClient] = []

    def build(
        config: GatewayConfig | None = None,
        *,
        clock: FakeClock | None = None,
        client_ip: str = CLIENT_IP,
        player_url: str | None = None,
    ) -> httpx.AsyncClient:
        config = config or load_config(kong_yml)
        config = config.with_upstreams({"player": player_url or upstream.url})
        gateway = Gateway(config, clock=clock) if clock else Gateway(config)
        transport = httpx.ASGITransport(app=gateway, client=(client_ip, 50000))
        client = httpx.AsyncClient(transport=transport, base_url="http://gateway.test")
        gateways.append(gateway)
        clients.append(client)
        return client

    yield build
    for client in clients:
        await client.aclose()
    for gateway in gateways:
        await gateway.aclose()


@pytest.fixture
def gw(gateway_for: GatewayFactory) -> httpx.AsyncClient:
    return gateway_for()


@pytest.fixture
def token(dev_private_key: RSAPrivateKey) -> str:
    return make_token(dev_private_key)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# -- routing -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/v1/auth/register"),
        ("POST", "/api/v1/auth/login"),
        ("POST", "/api/v1/auth/refresh"),
        ("POST", "/api/v1/auth/logout"),
        ("GET", "/api/v1/auth/jwks"),
        ("GET", "/api/v1/players/3fa85f64-5717-4562-b3fc-2c963f66afa6"),
    ],
)
async def test_public_routes_reach_the_player_service_unchanged(
    gw: httpx.AsyncClient, upstream: EchoUpstream, method: str, path: str
) -> None:
    response = await gw.request(method, path + "?x=1", json={"a": 1} if method == "POST" else None)
    assert response.status_code == 200, response.text
    assert upstream.last.method == method
    assert upstream.last.target == path + "?x=1"  # strip_path: false


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/players/me"),
        ("PATCH", "/api/v1/players/me"),
        ("GET", "/api/v1/players/me/preferences"),
        ("PUT", "/api/v1/players/me/preferences"),
        ("POST", "/api/v1/admin/players/3fa85f64-5717-4562-b3fc-2c963f66afa6/roles"),
    ],
)
async def test_private_routes_need_a_token(
    gw: httpx.AsyncClient, upstream: EchoUpstream, token: str, method: str, path: str
) -> None:
    anonymous = await gw.request(method, path)
    assert_problem(anonymous, 401, "Unauthorized")
    assert anonymous.headers["www-authenticate"].startswith("Bearer")

    response = await gw.request(method, path, headers=bearer(token))
    assert response.status_code == 200, response.text
    assert upstream.last.target == path
    assert upstream.last.header("x-consumer-username") == "tablium-player"
    assert upstream.last.header("x-credential-identifier") == "tablium-player"
    assert upstream.last.header("authorization") == f"Bearer {token}"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/internal"),
        ("GET", "/internal/health"),
        ("POST", "/internal/v1/holds"),
        ("GET", "/api/v1/internal/players"),
        ("GET", "/api/v1/players/3fa85f64-5717-4562-b3fc-2c963f66afa6/extra"),
        ("DELETE", "/api/v1/players/3fa85f64-5717-4562-b3fc-2c963f66afa6"),
        ("GET", "/api/v1/auth/login"),
        ("GET", "/health"),
        ("GET", "/metrics"),
        ("GET", "/schema"),
        ("GET", "/"),
        # Normalized before routing: these are /internal/x and /health.
        ("GET", "/api/v1/auth/jwks/../../../../internal/x"),
        ("GET", "/api/v1/players/%2e%2e/%2E%2E/%2e%2e/../health"),
    ],
)
async def test_unmatched_paths_get_kongs_404(gw: httpx.AsyncClient, method: str, path: str) -> None:
    response = await gw.request(method, path)
    assert_problem(response, 404, NO_ROUTE)


async def test_me_is_private_and_only_uuids_are_public_profiles(gw: httpx.AsyncClient) -> None:
    assert (await gw.get("/api/v1/players/me")).status_code == 401
    for odd in ("mexico", "me%2F", "me%2f", "x%2F..%2Fme", "3FA85F64-5717-4562-B3FC-2C963F66AFA6x"):
        response = await gw.get(f"/api/v1/players/{odd}")
        assert response.status_code == 404, odd


async def test_the_path_sent_upstream_is_the_normalized_one(gw: httpx.AsyncClient, upstream: EchoUpstream) -> None:
    response = await gw.get("/api/v1/players/me/%2e%2e/3fa85f64-5717-4562-b3fc-2c963f66afa6")
    assert response.status_code == 200
    assert upstream.last.target == "/api/v1/players/3fa85f64-5717-4562-b3fc-2c963f66afa6"


async def test_strip_path_for_prefix_and_regex_paths(gateway_for: GatewayFactory, upstream: EchoUpstream) -> None:
    config = parse_config(
        {
            "_format_version": "3.0",
            "services": [
                {
                    "name": "player",
                    "url": "http://player:8000/base",
                    "routes": [
                        {"name": "prefix", "paths": ["/edge/player"], "strip_path": True},
                        {"name": "regex", "paths": [r"~/v\d+/thing"], "strip_path": True},
                        {"name": "kept", "paths": ["/kept"], "strip_path": False},
                    ],
                }
            ],
        }
    )
    gw = gateway_for(config)
    await gw.get("/edge/player/a/b?q=1")
    assert upstream.last.target == "/base/a/b?q=1"
    await gw.get("/v42/thing/c")
    assert upstream.last.target == "/base/c"
    await gw.get("/edge/player")
    assert upstream.last.target == "/base"
    await gw.get("/kept/d")
    assert upstream.last.target == "/base/kept/d"


# -- jwt -----------------------------------------------------------------------------


def _hs256_with_public_key_as_secret() -> str:
    """The classic RS256→HS256 confusion attack, built by hand (PyJWT refuses to)."""

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = b64(json.dumps({"iss": "tablium-player", "sub": "p-1", "exp": 4_000_000_000}).encode())
    secret = (DEV_KEYS / "jwt-dev-public.pem").read_bytes()
    signature = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64(signature)}"


def _alg_none() -> str:
    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    header = b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    payload = b64(json.dumps({"iss": "tablium-player", "sub": "p-1", "exp": 4_000_000_000}).encode())
    return f"{header}.{payload}."


async def test_valid_rs256_token_is_accepted(gw: httpx.AsyncClient, token: str) -> None:
    first = await gw.get("/api/v1/players/me", headers=bearer(token))
    again = await gw.get("/api/v1/players/me", headers={"Authorization": f"bearer   {token}"})  # cached path
    assert (first.status_code, again.status_code) == (200, 200)


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda own, other: make_token(own, ttl_s=-1), "exp: token expired"),
        (lambda own, other: make_token(other), "Invalid signature"),
        (lambda own, other: make_token(own, iss="someone-else"), "No credentials found for given 'iss'"),
        (lambda own, other: make_token(own, iss=None), "No mandatory 'iss' in claims"),
        (lambda own, other: make_token(own, iss=""), "Invalid 'iss' in claims"),
        (lambda own, other: _alg_none(), "Invalid algorithm"),
        (lambda own, other: _hs256_with_public_key_as_secret(), "Invalid algorithm"),
        (lambda own, other: make_token("a-shared-secret-of-32-bytes-long!", algorithm="HS256"), None),
        (lambda own, other: make_token(own, algorithm="RS512"), "Invalid algorithm"),
        (lambda own, other: "not.a.jwt", None),
        (lambda own, other: make_token(own)[:-4] + "AAAA", "Invalid signature"),
    ],
)
async def test_bad_tokens_are_rejected(
    gw: httpx.AsyncClient,
    upstream: EchoUpstream,
    dev_private_key: RSAPrivateKey,
    other_private_key: RSAPrivateKey,
    make: Callable[[Any, Any], str],
    expected: str | None,
) -> None:
    before = len(upstream.seen)
    response = await gw.get("/api/v1/players/me", headers=bearer(make(dev_private_key, other_private_key)))
    assert_problem(response, 401, expected)
    assert "invalid_token" in response.headers["www-authenticate"]
    assert len(upstream.seen) == before


async def test_expiry_is_checked_on_every_request_even_for_a_cached_token(
    gateway_for: GatewayFactory, dev_private_key: RSAPrivateKey, clock: FakeClock
) -> None:
    gw = gateway_for(clock=clock)
    token = make_token(dev_private_key, exp=int(clock.now) + 60)
    assert (await gw.get("/api/v1/players/me", headers=bearer(token))).status_code == 200
    clock.now += 61
    response = await gw.get("/api/v1/players/me", headers=bearer(token))
    assert_problem(response, 401, "exp: token expired")


async def test_token_without_exp_is_rejected(gw: httpx.AsyncClient, dev_private_key: RSAPrivateKey) -> None:
    token = make_token(dev_private_key, exp=None)
    response = await gw.get("/api/v1/players/me", headers=bearer(token))
    assert response.status_code == 401


async def test_token_in_query_string_is_not_accepted(gw: httpx.AsyncClient, token: str) -> None:
    assert (await gw.get(f"/api/v1/players/me?jwt={token}")).status_code == 401


async def test_spoofed_consumer_headers_are_dropped(gw: httpx.AsyncClient, upstream: EchoUpstream) -> None:
    await gw.get(
        "/api/v1/players/3fa85f64-5717-4562-b3fc-2c963f66afa6",
        headers={"X-Consumer-Username": "admin", "X-Credential-Identifier": "x"},
    )
    assert upstream.last.header("x-consumer-username") is None
    assert upstream.last.header("x-credential-identifier") is None


# -- rate limiting, size limit ----------------------------------------------------------


def _with_rate_limit(config: GatewayConfig, conf: RateLimitConfig) -> GatewayConfig:
    routes = tuple(
        dataclasses.replace(r, plugins=dataclasses.replace(r.plugins, rate_limit=conf)) for r in config.routes
    )
    return dataclasses.replace(config, routes=routes)


async def test_rate_limit_per_client_ip(kong_yml: Path, upstream: EchoUpstream, clock: FakeClock) -> None:
    config = _with_rate_limit(load_config(kong_yml), RateLimitConfig(limits=(("second", 10), ("minute", 3))))
    gateway = Gateway(config.with_upstreams({"player": upstream.url}), clock=clock)

    def client_from(ip: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=gateway, client=(ip, 50000))
        return httpx.AsyncClient(transport=transport, base_url="http://gateway.test")

    gw, other = client_from(CLIENT_IP), client_from("198.51.100.9")
    for remaining in (2, 1, 0):
        response = await gw.get("/api/v1/players/3fa85f64-5717-4562-b3fc-2c963f66afa6")
        assert response.status_code == 200
        assert response.headers["x-ratelimit-limit-minute"] == "3"
        assert response.headers["x-ratelimit-remaining-minute"] == str(remaining)
        assert response.headers["ratelimit-limit"] == "3"
        assert response.headers["ratelimit-remaining"] == str(remaining)
        assert response.headers["ratelimit-reset"] == "60"
    limited = await gw.post("/api/v1/auth/login", json={})  # a global plugin: any route counts
    assert_problem(limited, 429, "API rate limit exceeded")
    assert limited.headers["retry-after"] == "60"
    assert limited.headers["ratelimit-remaining"] == "0"

    assert (
        await other.get("/api/v1/players/3fa85f64-5717-4562-b3fc-2c963f66afa6")
    ).status_code == 200  # its own budget

    clock.now += 45
    assert (await gw.get("/api/v1/players/3fa85f64-5717-4562-b3fc-2c963f66afa6")).headers["retry-after"] == "15"
    clock.now += 15  # the next minute window
    assert (await gw.get("/api/v1/players/3fa85f64-5717-4562-b3fc-2c963f66afa6")).status_code == 200
    await gw.aclose()
    await other.aclose()
    await gateway.aclose()


async def test_kong_yml_rate_limit_trips_at_its_per_second_limit(gateway_for: GatewayFactory, clock: FakeClock) -> None:
    gw = gateway_for(clock=clock)
    statuses = [(await gw.get("/api/v1/players/3fa85f64-5717-4562-b3fc-2c963f66afa6")).status_code for _ in range(51)]
    assert statuses[:50] == [200] * 50
    assert statuses[50] == 429


async def test_request_size_limit(gw: httpx.AsyncClient, upstream: EchoUpstream) -> None:
    fits = await gw.post("/api/v1/auth/register", content=b"x" * 64 * 1024)
    assert fits.status_code == 200
    assert upstream.last.body == b"x" * 64 * 1024

    too_big = await gw.post("/api/v1/auth/register", content=b"x" * (64 * 1024 + 1))
    assert_problem(too_big, 413, "Request size limit exceeded")

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(70):
            yield b"y" * 1024

    chunked = await gw.post("/api/v1/auth/register", content=chunks())  # no Content-Length
    assert chunked.status_code == 413


class BodyParts:
    """A request body as the ASGI server hands it over: ``count`` parts (None: without end); what was read
    when the answer started."""

    def __init__(self, count: int | None, size: int = 1024 * 1024) -> None:
        self.count, self.size, self.read = count, size, 0
        self.statuses: list[tuple[int, int]] = []  # (status, parts read by then)
        self.headers: list[tuple[bytes, bytes]] = []

    async def receive(self) -> dict[str, Any]:
        self.read += 1
        more = self.count is None or self.read < self.count
        return {"type": "http.request", "body": b"x" * self.size, "more_body": more}

    async def send(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self.statuses.append((message["status"], self.read))
            self.headers = message["headers"]

    async def post(self, gateway: Gateway, path: str, *headers: tuple[bytes, bytes]) -> None:
        scope = {
            "type": "http",
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "headers": [(b"host", b"gateway.test"), *headers],
            "client": (CLIENT_IP, 50000),
            "server": ("gateway.test", 80),
        }
        await gateway(scope, self.receive, self.send)  # type: ignore[arg-type]


SEATS = "/api/v1/tables/3fa85f64-5717-4562-b3fc-2c963f66afa6/seats"


@pytest.mark.parametrize("framing", [b"content-length", b"transfer-encoding"])
async def test_a_refusal_reads_the_rest_of_the_body_before_answering(
    kong_yml: Path, token: str, framing: bytes
) -> None:
    """Over HTTP/1.1 a server that answers and closes with body bytes unread resets the connection, and the
    client loses the answer: the body is read to its end first (the granian test in test_cli shows the reset)."""
    gateway = Gateway(load_config(kong_yml))
    length = (b"content-length", b"4194304") if framing == b"content-length" else (b"transfer-encoding", b"chunked")
    auth = (b"authorization", f"Bearer {token}".encode())
    too_big = BodyParts(4)
    await too_big.post(gateway, SEATS, length, auth)  # over the size limit
    assert too_big.statuses == [(413, 4)]
    assert (b"connection", b"close") not in too_big.headers
    anonymous = BodyParts(4)
    await anonymous.post(gateway, SEATS, length)  # refused before the size limit, by jwt
    assert anonymous.statuses == [(401, 4)]
    unrouted = BodyParts(4)
    await unrouted.post(gateway, "/nowhere", length)
    assert unrouted.statuses == [(404, 4)]


async def test_a_body_without_end_is_read_up_to_a_bound_then_the_connection_closes(kong_yml: Path, token: str) -> None:
    gateway = Gateway(load_config(kong_yml))
    endless = BodyParts(None)
    await endless.post(
        gateway, SEATS, (b"content-length", b"99999999999"), (b"authorization", f"Bearer {token}".encode())
    )
    [(status, read)] = endless.statuses
    assert status == 413
    assert 16 <= read <= 18  # DRAIN_MAX_BYTES (16 MiB) and a little
    assert (b"connection", b"close") in endless.headers


async def test_a_stalled_body_is_given_up_on() -> None:
    async def stalled() -> dict[str, Any]:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    assert not await drain_body(stalled, max_s=0.01)  # type: ignore[arg-type]


async def test_a_client_waiting_for_100_continue_is_not_asked_for_its_body(kong_yml: Path) -> None:
    gateway = Gateway(load_config(kong_yml))
    waiting = BodyParts(4)
    await waiting.post(gateway, SEATS, (b"content-length", b"4194304"), (b"expect", b"100-continue"))
    assert waiting.statuses == [(401, 0)]


# -- headers: correlation id, forwarding, CORS ------------------------------------------------


async def test_correlation_id_is_generated_passed_upstream_and_echoed(
    gw: httpx.AsyncClient, upstream: EchoUpstream
) -> None:
    response = await gw.get("/api/v1/players/3fa85f64-5717-4562-b3fc-2c963f66afa6")
    request_id = response.headers["x-request-id"]
    assert uuid.UUID(request_id)
    assert upstream.last.header("x-request-id") == request_id

    response = await gw.get(
        "/api/v1/players/3fa85f64-5717-4562-b3fc-2c963f66afa6", headers={"X-Request-ID": "client-chosen-id"}
    )
    assert response.headers["x-request-id"] == "client-chosen-id"
    assert upstream.last.header("x-request-id") == "client-chosen-id"
    # The upstream echoed it too; the client sees it once (Kong sets the header, it does not add one).
    assert response.headers.get_list("x-request-id") == ["client-chosen-id"]


async def test_forwarded_headers_tell_the_upstream_who_the_client_is(
    gw: httpx.AsyncClient, upstream: EchoUpstream
) -> None:
    await gw.get(
        "/api/v1/players/3fa85f64-5717-4562-b3fc-2c963f66afa6",
        headers={"X-Real-IP": "6.6.6.6", "X-Forwarded-Proto": "https"},
    )
    seen = upstream.last
    assert seen.header("x-forwarded-for") == CLIENT_IP
    assert seen.header("x-real-ip") == CLIENT_IP
    assert seen.header("x-forwarded-proto") == "http"
    assert seen.header("x-forwarded-host") == "gateway.test"
    assert seen.header("x-forwarded-path") == "/api/v1/players/3fa85f64-5717-4562-b3fc-2c963f66afa6"
    assert seen.header("host") == f"127.0.0.1:{upstream.port}"
    assert seen.header("user-agent") == f"python-httpx/{httpx.__version__}"  # the client's own

    await gw.get("/api/v1/players/3fa85f64-5717-4562-b3fc-2c963f66afa6", headers={"X-Forwarded-For": "198.51.100.1"})
    assert upstream.last.header("x-forwarded-for") == f"198.51.100.1, {CLIENT_IP}"


async def test_cors_preflight_is_answered_by_the_gateway_even_on_private_routes(
    gw: httpx.AsyncClient, upstream: EchoUpstream
) -> None:
    before = len(upstream.seen)
    response = await gw.options(
        "/api/v1/players/me",
        headers={
            "Origin": "https://app.example",
            "Access-Control-Request-Method": "PATCH",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "*"
    assert "PATCH" in response.headers["access-control-allow-methods"].split(",")
    assert "Authorization" in response.headers["access-control-allow-headers"].split(",")
    assert response.headers["access-control-max-age"] == "600"
    assert len(upstream.seen) == before

    simple = await gw.get(
        "/api/v1/players/3fa85f64-5717-4562-b3fc-2c963f66afa6", headers={"Origin": "https://app.example"}
    )
    assert simple.headers["access-control-allow-origin"] == "*"
    assert "X-Request-ID" in simple.headers["access-control-expose-headers"].split(",")


# -- proxying ----------------------------------------------------------------------------------


async def test_large_responses_stream_through_intact(gw: httpx.AsyncClient) -> None:
    async with gw.stream("GET", "/api/v1/players/3fa85f64-5717-4562-b3fc-2c963f66afa6?big=1") as response:
        size = 0
        async for chunk in response.aiter_raw():
            size += len(chunk)
    assert response.status_code == 200
    assert size == BIG_BODY_SIZE


async def test_upstream_cookies_reach_the_client_but_are_not_kept_by_the_proxy(
    gw: httpx.AsyncClient, upstream: EchoUpstream
) -> None:
    first = await gw.get("/api/v1/players/3fa85f64-5717-4562-b3fc-2c963f66afa6")
    assert first.headers["set-cookie"].startswith("upstream=1")
    gw.cookies.clear()
    await gw.get("/api/v1/players/0b7e9c2a-1d2f-4e5a-9b8c-7d6e5f4a3b2c")
    assert upstream.last.header("cookie") is None


async def test_502_when_the_service_is_down(gateway_for: GatewayFactory) -> None:
    gw = gateway_for(player_url="http://127.0.0.1:9")  # discard port: nothing listens
    response = await gw.get("/api/v1/players/3fa85f64-5717-4562-b3fc-2c963f66afa6")
    assert_problem(response, 502, "An invalid response was received from the upstream server")
    assert "127.0.0.1" not in response.text  # never the service's address
    assert "x-request-id" in response.headers


async def test_responses_are_never_sniffed(gw: httpx.AsyncClient, upstream: EchoUpstream) -> None:
    """kong.yml's response-transformer adds nosniff to the services' responses that lack it, as Kong would."""
    proxied = await gw.get("/api/v1/players/3fa85f64-5717-4562-b3fc-2c963f66afa6")
    assert proxied.status_code == 200  # the echo upstream sends no X-Content-Type-Options
    assert proxied.headers.get_list("x-content-type-options") == ["nosniff"]
    preflight = await gw.options(
        "/api/v1/auth/login",
        headers={"Origin": "https://app.example", "Access-Control-Request-Method": "POST"},
    )
    assert preflight.headers.get_list("x-content-type-options") == ["nosniff"]


@pytest.fixture
def slow_player_config(kong_yml: Path) -> GatewayConfig:
    """kong.yml with a 0.2 s read timeout for the player service."""
    kong = yaml.safe_load(kong_yml.read_text())
    services = [{**s, "read_timeout": 200} if s["name"] == "player" else s for s in kong["services"]]
    return parse_config({**kong, "services": services})


async def test_504_when_the_service_is_too_slow(gateway_for: GatewayFactory, slow_player_config: GatewayConfig) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(65536)
        await asyncio.sleep(5)  # never answers within the read timeout below
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    gw = gateway_for(slow_player_config, player_url=f"http://127.0.0.1:{port}")
    response = await gw.get("/api/v1/players/3fa85f64-5717-4562-b3fc-2c963f66afa6")
    assert_problem(response, 504, "The upstream server is timing out")
    assert str(port) not in response.text
    server.close()


async def test_metrics_count_requests_by_route_and_status(gateway_for: GatewayFactory, kong_yml: Path) -> None:
    gateway = Gateway(load_config(kong_yml))
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=gateway), base_url="http://gateway.test")
    await client.get("/api/v1/players/me")
    await client.get("/nowhere")
    registry = gateway.metrics.registry
    assert (
        registry.get_sample_value(
            "kong_http_requests_total",
            {"service": "player", "route": "player-me", "code": "401", "source": "kong"},
        )
        == 1
    )
    assert (
        registry.get_sample_value(
            "kong_http_requests_total", {"service": "", "route": "", "code": "404", "source": "kong"}
        )
        == 1
    )
    await client.aclose()
    await gateway.aclose()


# -- what a proxied request leaves behind ----------------------------------------------


async def test_a_proxied_request_leaves_no_reference_cycle(
    gateway_for: GatewayFactory, kong_yml: Path, token: str
) -> None:
    """Everything a proxied request allocates is freed by reference counting: garbage in cycles waits for the
    collector, whose full collections stopped the gateway for tens of ms (its p99, ADR 0004)."""
    gw = gateway_for(load_config(kong_yml).without_plugins({"rate-limiting"}))
    for _ in range(20):  # connections opened, caches filled
        assert (await gw.get("/api/v1/players/me", headers=bearer(token))).status_code == 200
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        for _ in range(50):
            response = await gw.get("/api/v1/players/me", headers=bearer(token))
            assert response.status_code == 200
        gc.collect()
        # httpx's ASGITransport (the test client) makes cycles of its own; the gateway's modules must not.
        ours = [o for o in gc.garbage if type(o).__module__.startswith(("tablium_gateway", "httptools"))]
        assert ours == []
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()


async def test_generated_request_ids_are_random_version_4_uuids(gw: httpx.AsyncClient) -> None:
    ids = [(await gw.get("/api/v1/auth/jwks")).headers["x-request-id"] for _ in range(300)]
    parsed = [uuid.UUID(value) for value in ids]
    assert [str(u) for u in parsed] == ids  # the canonical lower-case form
    assert {u.version for u in parsed} == {4}
    assert {u.variant for u in parsed} == {uuid.RFC_4122}
    assert len(set(ids)) == len(ids)
