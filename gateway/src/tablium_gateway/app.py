"""The development gateway: an ASGI app serving kong.yml.

Per request, in Kong's plugin order: route match (404 if none), correlation-id, cors
(preflights answered here), jwt (401), request-size-limiting (413), rate-limiting
(429), then a streaming proxy to the route's service over one shared, pooled
``httpx.AsyncClient`` (502 when the service can't be reached, 504 on a timeout);
response-transformer's headers are added to every response.

The gateway's own refusals are problem+json (RFC 9457) like the services' errors, with
Kong's messages as the detail (see docs/adr/0004-dev-gateway.md for what Kong itself sends).
"""

from __future__ import annotations

import asyncio
import contextlib
import http.cookiejar
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from http import HTTPStatus
from typing import Any

import httpx
import websockets
from websockets.typing import Subprotocol

from tablium_gateway.config import CorrelationIdConfig, GatewayConfig, RateLimitConfig, Route, Service
from tablium_gateway.cors import Cors
from tablium_gateway.jwt_auth import Authenticated, JwtAuthenticator
from tablium_gateway.metrics import GatewayMetrics
from tablium_gateway.rate_limit import LocalRateLimiter
from tablium_gateway.router import Router, normalize_path, upstream_path
from tablium_gateway.transport import PooledHTTP1Transport

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Any]
Send = Callable[[Message], Any]

_HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)
# Set by the gateway itself; a client's own values would be spoofing.
_REPLACED_UPSTREAM = _HOP_BY_HOP | {
    b"host",
    b"expect",  # answered by the ASGI server; an upstream 100 Continue would confuse the proxy
    b"x-forwarded-for",
    b"x-forwarded-proto",
    b"x-forwarded-host",
    b"x-forwarded-port",
    b"x-forwarded-path",
    b"x-forwarded-prefix",
    b"x-real-ip",
    b"x-consumer-id",
    b"x-consumer-custom-id",
    b"x-consumer-username",
    b"x-credential-identifier",
    b"x-anonymous-consumer",
}
_PROBLEM_JSON = (b"content-type", b"application/problem+json")
# The gateway's bodies are always JSON; a browser must never sniff one into something else.
_NOSNIFF = (b"x-content-type-options", b"nosniff")
_VIA = (b"via", b"1.1 tablium-dev-gateway")
# The services' problem titles (tablium_kit.errors), so clients handle the gateway's refusals like theirs.
_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    404: "Not found",
    411: "Length required",
    413: "Request too large",
    429: "Too many requests",
    502: "Bad gateway",
    504: "Gateway timeout",
}
_MAX_REQUEST_ID = 200
NO_ROUTE = "no Route matched with those values"


class _BodyTooLarge(Exception):
    pass


class _RejectAllCookies(http.cookiejar.DefaultCookiePolicy):
    """The proxy's client must never keep one user's cookies for the next request."""

    def set_ok(self, cookie: http.cookiejar.Cookie, request: Any) -> bool:
        return False


class Gateway:
    def __init__(
        self,
        config: GatewayConfig,
        *,
        clock: Callable[[], float] = time.time,
        max_connections: int = 1000,
    ) -> None:
        self.config = config
        self.router = Router(config.routes)
        self.metrics = GatewayMetrics()
        self._jwt = JwtAuthenticator(config.credentials, clock)
        self._cors: dict[str, Cors] = {}
        self._limiters: dict[RateLimitConfig, LocalRateLimiter] = {}
        for route in config.routes:
            if route.plugins.cors is not None:
                self._cors[route.name] = Cors(route.plugins.cors)
            rate_limit = route.plugins.rate_limit
            if rate_limit is not None and rate_limit not in self._limiters:
                # Equal configs share counters: a global plugin limits a client across all routes.
                self._limiters[rate_limit] = LocalRateLimiter(rate_limit, clock)
        self._timeouts = {
            s.name: httpx.Timeout(
                connect=s.connect_timeout_s, read=s.read_timeout_s, write=s.write_timeout_s, pool=s.connect_timeout_s
            ).as_dict()
            for s in config.services
        }
        self._max_connections = max_connections
        self._client: httpx.AsyncClient | None = None
        self._request_id_base = str(uuid.uuid4())
        self._request_counter = 0

    # -- ASGI ------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "websocket":
            await self._websocket(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self._client_or_new()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def _client_or_new(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                transport=PooledHTTP1Transport(max_connections=self._max_connections),
                cookies=http.cookiejar.CookieJar(policy=_RejectAllCookies()),
                follow_redirects=False,
            )
            self._client.headers.clear()  # no User-Agent/Accept of httpx's own upstream
        return self._client

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Lobby WebSockets: match the route like an HTTP GET, run the same plugins on the handshake
        (correlation id, jwt, rate limiting), open the upstream socket, then relay frames both ways.

        A refusal closes before accepting (the server answers the handshake 403); an upstream that
        refuses or can't be reached the same way. Closing codes pass through in both directions.
        """
        await receive()  # websocket.connect
        path = _request_path(scope)
        match = self.router.match("GET", path) if path is not None else None
        if match is None or path is None:
            await send({"type": "websocket.close", "code": 1008})
            return
        route = match.route
        plugins = route.plugins
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        upstream: list[tuple[bytes, bytes]] = []
        if plugins.correlation_id is not None:
            self._correlate(plugins.correlation_id, headers, upstream, [])
        if plugins.jwt is not None:
            outcome = self._jwt.authenticate(plugins.jwt, headers, scope.get("query_string", b"").decode("latin-1"))
            if not isinstance(outcome, Authenticated):
                await send({"type": "websocket.close", "code": 1008})
                return
            upstream.append((b"x-consumer-username", outcome.credential.consumer.encode()))
            upstream.append((b"x-credential-identifier", outcome.credential.key.encode()))
        if plugins.rate_limit is not None:
            client = scope.get("client")
            if not self._limiters[plugins.rate_limit].hit(client[0] if client else "unknown").allowed:
                await send({"type": "websocket.close", "code": 1013})
                return
        service = route.service
        target = upstream_path(service.path, path, match.matched, route.strip_path)
        query: bytes = scope.get("query_string", b"")
        url = service.base_url.replace("https://", "wss://", 1).replace("http://", "ws://", 1) + target
        if query:
            url += "?" + query.decode("latin-1")
        forwarded = [
            (k.decode("latin-1"), v.decode("latin-1"))
            for k, v in self._upstream_headers(scope, route, headers, path, upstream)
            if k != b"host" and not k.startswith(b"sec-websocket-")
        ]
        # Subprotocols go through (a browser's ticket may travel as one); the upstream's choice comes back.
        offered = [p.strip() for p in headers.get("sec-websocket-protocol", "").split(",") if p.strip()]
        try:
            peer = await websockets.connect(
                url,
                additional_headers=forwarded,
                subprotocols=[Subprotocol(p) for p in offered] or None,
                open_timeout=service.connect_timeout_s,
                max_size=_WS_MAX_MESSAGE,
                compression=None,
            )
        except websockets.InvalidStatus as exc:
            await send({"type": "websocket.close", "code": 1008 if exc.response.status_code < 500 else 1011})
            return
        except (OSError, TimeoutError, websockets.WebSocketException):
            await send({"type": "websocket.close", "code": 1011})
            return
        await send({"type": "websocket.accept", "subprotocol": peer.subprotocol})
        await _relay(peer, receive, send)

    # -- HTTP ------------------------------------------------------------------------

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        path = _request_path(scope)
        if path is None:
            await self._error(send, 400, "Bad request", [], None, started)
            return
        method: str = scope["method"]
        match = self.router.match(method, path)
        if match is None:
            await self._error(send, 404, NO_ROUTE, [], None, started)
            return
        route = match.route
        plugins = route.plugins
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        downstream: list[tuple[bytes, bytes]] = []
        upstream: list[tuple[bytes, bytes]] = []

        if plugins.correlation_id is not None:
            self._correlate(plugins.correlation_id, headers, upstream, downstream)

        cors = self._cors.get(route.name)
        preflight = cors is not None and Cors.is_preflight(method, headers)
        if cors is not None:
            if preflight and not cors.conf.preflight_continue:
                await self._respond(send, 200, downstream + cors.preflight_headers(headers), b"", route, started)
                return
            downstream += cors.response_headers(headers)

        jwt_conf = plugins.jwt
        if jwt_conf is not None and not (preflight and not jwt_conf.run_on_preflight):
            outcome = self._jwt.authenticate(jwt_conf, headers, scope.get("query_string", b"").decode("latin-1"))
            if not isinstance(outcome, Authenticated):
                challenge = (b"www-authenticate", outcome.www_authenticate.encode())
                await self._error(send, 401, outcome.detail, [*downstream, challenge], route, started)
                return
            upstream.append((b"x-consumer-username", outcome.credential.consumer.encode()))
            upstream.append((b"x-credential-identifier", outcome.credential.key.encode()))

        body: bytes | None = None
        size_limit = plugins.size_limit
        if size_limit is not None:
            declared = headers.get("content-length")
            if declared is None and size_limit.require_content_length:
                await self._error(send, 411, "A valid Content-Length header is required", downstream, route, started)
                return
            if declared is not None and (not declared.isdigit() or int(declared) > size_limit.allowed_bytes):
                await self._error(send, 413, "Request size limit exceeded", downstream, route, started)
                return
            try:
                body = await _read_body(receive, size_limit.allowed_bytes)
            except _BodyTooLarge:
                await self._error(send, 413, "Request size limit exceeded", downstream, route, started)
                return

        if plugins.rate_limit is not None:
            client = scope.get("client")
            decision = self._limiters[plugins.rate_limit].hit(client[0] if client else "unknown")
            downstream += decision.headers
            if not decision.allowed:
                conf = plugins.rate_limit
                await self._error(send, conf.error_code, conf.error_message, downstream, route, started)
                return

        await self._proxy(
            scope, receive, send, route, path, match.matched, headers, body, upstream, downstream, started
        )

    def _correlate(
        self,
        conf: CorrelationIdConfig,
        headers: Mapping[str, str],
        upstream: list[tuple[bytes, bytes]],
        downstream: list[tuple[bytes, bytes]],
    ) -> None:
        name = conf.header_name.lower()
        request_id = headers.get(name)
        # A client's id is kept (that is the point), unless it could corrupt a log line.
        if not request_id or len(request_id) > _MAX_REQUEST_ID or not request_id.isprintable():
            if conf.generator == "uuid":
                request_id = str(uuid.uuid4())
            else:
                self._request_counter += 1
                request_id = f"{self._request_id_base}#{self._request_counter}"
        header = (name.encode(), request_id.encode("latin-1", errors="replace"))
        upstream.append(header)
        if conf.echo_downstream:
            downstream.append(header)

    async def _proxy(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        route: Route,
        path: str,
        matched: str,
        headers: Mapping[str, str],
        body: bytes | None,
        upstream: list[tuple[bytes, bytes]],
        downstream: list[tuple[bytes, bytes]],
        started: float,
    ) -> None:
        service = route.service
        target = upstream_path(service.path, path, matched, route.strip_path)
        query: bytes = scope.get("query_string", b"")
        url = f"{service.base_url}{target}?{query.decode('latin-1')}" if query else service.base_url + target

        content: bytes | AsyncIterator[bytes]
        if body is not None:
            content = body
        elif "content-length" in headers or "transfer-encoding" in headers:
            content = _stream_body(receive)
        else:
            content = b""
        request = httpx.Request(
            scope["method"],
            url,
            headers=self._upstream_headers(scope, route, headers, path, upstream),
            content=content,
            extensions={"timeout": self._timeouts[service.name]},
        )
        sent = time.perf_counter()
        try:
            response = await self._client_or_new().send(request, stream=True)
        except httpx.TimeoutException:
            await self._error(send, 504, "The upstream server is timing out", downstream, route, started)
            return
        except httpx.TransportError:
            await self._error(
                send, 502, "An invalid response was received from the upstream server", downstream, route, started
            )
            return
        try:
            # Headers the gateway sets itself (request id, CORS, rate limits) replace the upstream's, as in Kong.
            own = _HOP_BY_HOP | {name.lower() for name, _ in downstream}
            raw = response.headers.raw
            response_headers = [(name.lower(), value) for name, value in raw if name.lower() not in own]
            response_headers += downstream
            response_headers += _missing(route, response_headers)
            response_headers.append(_VIA)
            await send({"type": "http.response.start", "status": response.status_code, "headers": response_headers})
            async for chunk in response.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            await response.aclose()
        self._observe(route, response.status_code, "service", started, sent)

    def _upstream_headers(
        self,
        scope: Scope,
        route: Route,
        headers: Mapping[str, str],
        path: str,
        extra: list[tuple[bytes, bytes]],
    ) -> list[tuple[bytes, bytes]]:
        connection_tokens = {t.strip().lower().encode() for t in headers.get("connection", "").split(",") if t.strip()}
        replaced = {name for name, _ in extra}
        out = [
            (k, v)
            for k, v in scope["headers"]
            if k not in _REPLACED_UPSTREAM and k not in connection_tokens and k not in replaced
        ]
        client = scope.get("client")
        client_ip = client[0] if client else "unknown"
        forwarded_for = headers.get("x-forwarded-for")
        host_header = headers.get("host", "")
        server = scope.get("server")
        service = route.service
        out += [
            (b"host", host_header.encode("latin-1") if route.preserve_host else _host_of(service)),
            # Like Kong: the client's X-Forwarded-For is kept and the peer appended to it;
            # X-Real-IP is the peer itself.
            (b"x-forwarded-for", f"{forwarded_for}, {client_ip}".encode() if forwarded_for else client_ip.encode()),
            (b"x-real-ip", client_ip.encode()),
            (b"x-forwarded-proto", scope.get("scheme", "http").encode()),
            (b"x-forwarded-host", host_header.rsplit(":", 1)[0].encode("latin-1") if host_header else b""),
            (b"x-forwarded-port", str(server[1] if server and server[1] else 80).encode()),
            (b"x-forwarded-path", path.encode("latin-1")),
        ]
        out += extra
        return out

    # -- responses made by the gateway -----------------------------------------------

    async def _error(
        self,
        send: Send,
        status: int,
        detail: str,
        headers: list[tuple[bytes, bytes]],
        route: Route | None,
        started: float,
    ) -> None:
        await self._respond(send, status, [*headers, _PROBLEM_JSON], problem(status, detail), route, started)

    async def _respond(
        self,
        send: Send,
        status: int,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
        route: Route | None,
        started: float,
    ) -> None:
        headers = [*headers, (b"content-length", str(len(body)).encode()), _NOSNIFF, _VIA]
        headers += _missing(route, headers)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})
        self._observe(route, status, "kong", started, None)

    def _observe(self, route: Route | None, status: int, source: str, started: float, sent: float | None) -> None:
        service = route.service.name if route is not None else ""
        name = route.name if route is not None else ""
        now = time.perf_counter()
        self.metrics.requests.labels(service, name, str(status), source).inc()
        self.metrics.request_latency.labels(service, name).observe((now - started) * 1000)
        if sent is not None:
            self.metrics.upstream_latency.labels(service, name).observe((now - sent) * 1000)


def problem(status: int, detail: str) -> bytes:
    """An RFC 9457 body shaped like the services' (type, title, status, detail); never an upstream's address."""
    title = _TITLES.get(status) or HTTPStatus(status).phrase.capitalize()
    slug = title.lower().replace(" ", "-")
    body = {"type": f"urn:tablium:problem:{slug}", "title": title, "status": status, "detail": detail}
    return json.dumps(body).encode()


def _missing(route: Route | None, headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """response-transformer's add.headers that the response doesn't have yet (Kong's add never overwrites)."""
    transformer = route.plugins.response_transformer if route is not None else None
    if transformer is None:
        return []
    present = {name.lower() for name, _ in headers}
    return [(name, value) for name, value in transformer.add_headers if name not in present]


_WS_MAX_MESSAGE = 1 << 20


async def _relay(peer: Any, receive: Receive, send: Send) -> None:
    """Frames both ways until either side closes; the other side is then closed with the same code."""

    async def downstream() -> None:
        try:
            async for frame in peer:
                if isinstance(frame, str):
                    await send({"type": "websocket.send", "text": frame})
                else:
                    await send({"type": "websocket.send", "bytes": frame})
        except websockets.ConnectionClosed:
            pass
        code = peer.close_code or 1000
        with contextlib.suppress(Exception):  # the client may be gone already
            await send({"type": "websocket.close", "code": code if code != 1005 else 1000})

    async def upstream() -> None:
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                await peer.close(code=message.get("code", 1000) if message.get("code", 1000) != 1005 else 1000)
                return
            if message["type"] == "websocket.receive":
                data = message.get("text")
                try:
                    await peer.send(data if data is not None else message.get("bytes") or b"")
                except websockets.ConnectionClosed:
                    return

    tasks = [asyncio.create_task(downstream()), asyncio.create_task(upstream())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await peer.close()


def _request_path(scope: Scope) -> str | None:
    raw_path: bytes | None = scope.get("raw_path")
    return normalize_path(raw_path.decode("latin-1").split("?", 1)[0] if raw_path else scope["path"])


def _host_of(service: Service) -> bytes:
    default = 443 if service.scheme == "https" else 80
    host = service.host if service.port == default else f"{service.host}:{service.port}"
    return host.encode("idna")


async def _read_body(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _stream_body(receive: Receive) -> AsyncIterator[bytes]:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        chunk: bytes = message.get("body", b"")
        if chunk:
            yield chunk
        if not message.get("more_body", False):
            return
