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

import os
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import httpx

from tablium_gateway.asgi import Receive, Scope, Send
from tablium_gateway.config import CorrelationIdConfig, GatewayConfig, RateLimitConfig, Route
from tablium_gateway.cors import Cors
from tablium_gateway.forwarding import (
    HOP_BY_HOP,
    BodyTooLarge,
    drain_body,
    read_body,
    request_path,
    stream_body,
    upstream_headers,
)
from tablium_gateway.jwt_auth import Authenticated, JwtAuthenticator
from tablium_gateway.metrics import GatewayMetrics
from tablium_gateway.rate_limit import LocalRateLimiter
from tablium_gateway.responses import NOSNIFF, PROBLEM_JSON, VIA, missing_added_headers, problem
from tablium_gateway.router import Router, upstream_path
from tablium_gateway.transport import PooledHTTP1Transport, request_head
from tablium_gateway.websocket import connect_upstream, relay

_MAX_REQUEST_ID = 200
# Paths and query strings that go upstream as they are (what a URL needs no percent-encoding for).
_PLAIN = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=:@/%]*")
_PLAIN_QUERY = re.compile(rb"[A-Za-z0-9\-._~!$&'()*+,;=:@/?%]*")
NO_ROUTE = "no Route matched with those values"
# Requests in flight to one service per gateway worker; the others wait in the gateway for a connection. With a
# connection per client request (64 at the benchmark's load), a burst after any stall went into the service all
# at once, to queue there for its few database connections: its in-app p99 doubled, its collector ran far more
# often, and the p99 through the gateway grew by more than the gateway's own work (ADR 0004, "The tail of
# /players/me through the gateway").
UPSTREAM_CONNECTIONS = 16
_CLOSE = (b"connection", b"close")


class _Uuid4s:
    """Random (version 4) UUID strings like ``str(uuid.uuid4())``, from os.urandom read 4 KB at a time: a
    correlation id per request cost ~10 µs with uuid4 (a syscall and a UUID object each), this ~3 µs."""

    _BLOCK = 4096
    _CLEAR = ~(0xF000 << 64) & ~(0xC000 << 48)
    _SET = (0x4000 << 64) | (0x8000 << 48)  # version 4, RFC 4122 variant

    def __init__(self) -> None:
        self._random = b""
        self._at = self._BLOCK

    def __call__(self) -> str:
        at = self._at
        if at >= len(self._random):
            self._random, at = os.urandom(self._BLOCK), 0
        self._at = at + 16
        h = "%032x" % (int.from_bytes(self._random[at : at + 16], "big") & self._CLEAR | self._SET)
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


class Gateway:
    def __init__(
        self,
        config: GatewayConfig,
        *,
        clock: Callable[[], float] = time.time,
        max_connections: int = UPSTREAM_CONNECTIONS,
    ) -> None:
        """``max_connections``: requests in flight to one service at a time."""
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
        self._transport: PooledHTTP1Transport | None = None
        self._uuid4 = _Uuid4s()
        self._request_id_base = str(uuid.uuid4())
        self._request_counter = 0
        self._series: dict[tuple[str, int, str], tuple[Any, Any, Any]] = {}

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
                self._transport_or_new()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def aclose(self) -> None:
        if self._transport is not None:
            await self._transport.aclose()
            self._transport = None

    def _transport_or_new(self) -> PooledHTTP1Transport:
        if self._transport is None:
            self._transport = PooledHTTP1Transport(max_connections=self._max_connections)
        return self._transport

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Lobby WebSockets: match the route like an HTTP GET, run the same plugins on the handshake
        (correlation id, jwt, rate limiting), open the upstream socket, then relay frames both ways.

        A refusal closes before accepting (the server answers the handshake 403); an upstream that
        refuses or can't be reached the same way. Closing codes pass through in both directions.
        """
        await receive()  # websocket.connect
        path = request_path(scope)
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
            for k, v in upstream_headers(scope, route, headers, path, upstream)
            if k != b"host" and not k.startswith(b"sec-websocket-")
        ]
        # Subprotocols go through (a browser's ticket may travel as one); the upstream's choice comes back.
        offered = [p.strip() for p in headers.get("sec-websocket-protocol", "").split(",") if p.strip()]
        peer = await connect_upstream(service, url, forwarded, offered)
        if isinstance(peer, int):
            await send({"type": "websocket.close", "code": peer})
            return
        await send({"type": "websocket.accept", "subprotocol": peer.subprotocol})
        await relay(peer, receive, send)

    # -- HTTP ------------------------------------------------------------------------

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        declared = headers.get("content-length")
        # A refusal reads what is left of the body first (forwarding.DRAIN_MAX_BYTES says why): an HTTP/1.x
        # body (HTTP/2 ends a stream, not the connection) the client is sending (not waiting for 100 Continue).
        unread: Receive | None = (
            receive
            if (declared not in (None, "0") or "transfer-encoding" in headers)
            and scope.get("http_version", "1.1") != "2"
            and headers.get("expect", "").lower() != "100-continue"
            else None
        )
        path = request_path(scope)
        if path is None:
            await self._error(send, 400, "Bad request", [], None, started, unread)
            return
        method: str = scope["method"]
        match = self.router.match(method, path)
        if match is None:
            await self._error(send, 404, NO_ROUTE, [], None, started, unread)
            return
        route = match.route
        plugins = route.plugins
        downstream: list[tuple[bytes, bytes]] = []
        upstream: list[tuple[bytes, bytes]] = []

        if plugins.correlation_id is not None:
            self._correlate(plugins.correlation_id, headers, upstream, downstream)

        cors = self._cors.get(route.name)
        preflight = cors is not None and Cors.is_preflight(method, headers)
        if cors is not None:
            if preflight and not cors.conf.preflight_continue:
                preflight_headers = downstream + cors.preflight_headers(headers)
                await self._respond(send, 200, preflight_headers, b"", route, started, unread)
                return
            downstream += cors.response_headers(headers)

        jwt_conf = plugins.jwt
        if jwt_conf is not None and not (preflight and not jwt_conf.run_on_preflight):
            outcome = self._jwt.authenticate(jwt_conf, headers, scope.get("query_string", b"").decode("latin-1"))
            if not isinstance(outcome, Authenticated):
                challenge = (b"www-authenticate", outcome.www_authenticate.encode())
                await self._error(send, 401, outcome.detail, [*downstream, challenge], route, started, unread)
                return
            upstream.append((b"x-consumer-username", outcome.credential.consumer.encode()))
            upstream.append((b"x-credential-identifier", outcome.credential.key.encode()))

        body: bytes | None = None
        size_limit = plugins.size_limit
        if size_limit is not None:
            if declared is None and size_limit.require_content_length:
                detail = "A valid Content-Length header is required"
                await self._error(send, 411, detail, downstream, route, started, unread)
                return
            if declared is not None and (not declared.isdigit() or int(declared) > size_limit.allowed_bytes):
                await self._error(send, 413, "Request size limit exceeded", downstream, route, started, unread)
                return
            try:
                # Without Content-Length or Transfer-Encoding an HTTP/1.x request has no body (RFC 9112 6.3):
                # nothing to wait for from the server (a receive() per request was ~5% of the proxy's time).
                # HTTP/2 frames bodies itself, so there the body is always read.
                framed = (
                    declared is not None
                    or "transfer-encoding" in headers
                    or scope.get("http_version", "1.1") not in ("1.1", "1.0")
                )
                body = await read_body(receive, size_limit.allowed_bytes) if framed else b""
                unread = None
            except BodyTooLarge as exc:
                unread = None if exc.ended else unread
                await self._error(send, 413, "Request size limit exceeded", downstream, route, started, unread)
                return

        if plugins.rate_limit is not None:
            client = scope.get("client")
            decision = self._limiters[plugins.rate_limit].hit(client[0] if client else "unknown")
            downstream += decision.headers
            if not decision.allowed:
                conf = plugins.rate_limit
                await self._error(send, conf.error_code, conf.error_message, downstream, route, started, unread)
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
                request_id = self._uuid4()
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
        forwarded = upstream_headers(scope, route, headers, path, upstream)
        content: bytes | AsyncIterator[bytes]
        if body is not None:
            content = body
            if body and "content-length" not in headers:
                forwarded.append((b"content-length", str(len(body)).encode()))
        elif "content-length" in headers or "transfer-encoding" in headers:
            content = stream_body(receive)
        else:
            content = b""
        transport = self._transport_or_new()
        timeout = self._timeouts[service.name]
        sent = time.perf_counter()
        try:
            if (
                isinstance(content, bytes)
                and service.scheme == "http"
                and _PLAIN.fullmatch(target)
                and (not query or _PLAIN_QUERY.fullmatch(query))
            ):
                # The common case, straight to the pooled transport: the request line and headers as bytes,
                # no httpx objects (ADR 0004, "Proxying cost").
                raw_target = target.encode("ascii") + (b"?" + query if query else b"")
                head = request_head(scope["method"].encode("ascii"), raw_target, forwarded)
                status, raw_headers, upstream_body = await transport.exchange(
                    service.host, service.port, head, content, head_only=scope["method"] == "HEAD", timeouts=timeout
                )
            else:  # a path to percent-encode, a streamed body: httpx builds the request
                url = f"{service.base_url}{target}?{query.decode('latin-1')}" if query else service.base_url + target
                request = httpx.Request(scope["method"], url, headers=forwarded, content=content,
                                        extensions={"timeout": timeout})  # fmt: skip
                response = await transport.handle_async_request(request)
                status, raw_headers = response.status_code, response.headers.raw
                upstream_body = response.stream  # type: ignore[assignment]
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
            own = HOP_BY_HOP | {name.lower() for name, _ in downstream} if downstream else HOP_BY_HOP
            response_headers = [(lower, value) for name, value in raw_headers if (lower := name.lower()) not in own]
            response_headers += downstream
            response_headers += missing_added_headers(route, response_headers)
            response_headers.append(VIA)
            await send({"type": "http.response.start", "status": status, "headers": response_headers})
            # Each chunk is sent once the next has arrived, so the last goes with more_body=False: a body
            # that arrived whole (most answers) is one message, which the server sends as a plain response
            # rather than a stream; a long body is still streamed chunk by chunk.
            pending: bytes | None = None
            async for chunk in upstream_body:
                if pending is not None:
                    await send({"type": "http.response.body", "body": pending, "more_body": True})
                pending = chunk
            await send({"type": "http.response.body", "body": pending or b"", "more_body": False})
        finally:
            await upstream_body.aclose()
        self._observe(route, status, "service", started, sent)

    # -- responses made by the gateway -----------------------------------------------

    async def _error(
        self,
        send: Send,
        status: int,
        detail: str,
        headers: list[tuple[bytes, bytes]],
        route: Route | None,
        started: float,
        unread: Receive | None = None,
    ) -> None:
        await self._respond(send, status, [*headers, PROBLEM_JSON], problem(status, detail), route, started, unread)

    async def _respond(
        self,
        send: Send,
        status: int,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
        route: Route | None,
        started: float,
        unread: Receive | None = None,
    ) -> None:
        """``unread``: the ``receive`` of a request body not read yet, read to its end first."""
        headers = [*headers, (b"content-length", str(len(body)).encode()), NOSNIFF, VIA]
        headers += missing_added_headers(route, headers)
        if unread is not None and not await drain_body(unread):
            headers.append(_CLOSE)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})
        self._observe(route, status, "kong", started, None)

    def _observe(self, route: Route | None, status: int, source: str, started: float, sent: float | None) -> None:
        now = time.perf_counter()
        key = (route.name if route is not None else "", status, source)
        series = self._series.get(key)
        if series is None:
            # A route's metric children, looked up once: prometheus_client's labels() takes a lock and
            # checks the labels on every call.
            service = route.service.name if route is not None else ""
            metrics = self.metrics
            series = self._series[key] = (
                metrics.requests.labels(service, key[0], str(status), source),
                metrics.request_latency.labels(service, key[0]),
                metrics.upstream_latency.labels(service, key[0]),
            )
        requests, latency, upstream = series
        requests.inc()
        latency.observe((now - started) * 1000)
        if sent is not None:
            upstream.observe((now - sent) * 1000)
