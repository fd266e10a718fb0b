"""The one pure-ASGI layer the kit puts around every service.

It wraps the whole application (``Litestar.asgi_handler``, outside Litestar's own
error handling), so every response passes through it: those of handlers, of
errors and of requests that matched no route. Per request it does the real client
address (from trusted forwarding headers), the request id (taken or made, echoed,
visible to log lines), the refusal of control characters in the path and query
(``inputs.py``), credentials out of the query string (``net.QUERY_CREDENTIALS``: kept in the request
context, so no trace or log line carries them), the security headers of every response, the Prometheus request
count and latency, and the commit or rollback of the request's database session if
a handler opened one (``db.RequestSessions``; an integrity error at that commit is
a 409, anything else a 500), and the reading of a request body nobody read before the answer
goes out (:func:`drain_body`). It opens the request's ``net.RequestContext`` (with the
``Authorization`` header): authentication needs the matched route's declared
security, so it runs after routing, as the application's ``before_request`` hook
(``auth.RouteAuthenticator``).

Why one layer around the application and not Litestar middleware: every
middleware layer costs a call and a ``send`` wrapper per request, and Litestar
adds a second error-handling layer inside route middleware; for a small handler
those are a large share of the time (ADR 0001).
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import time
from bisect import bisect_left
from collections.abc import Iterable, Iterator
from itertools import accumulate, count
from typing import Final

import structlog
from litestar import Litestar
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, ReceiveMessage, Scope, Send
from litestar.utils.scope.state import ScopeState
from prometheus_client import REGISTRY, Metric
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.exc import IntegrityError

from tablium_kit.db import REQUEST_SESSION_KEY, finish_request_session
from tablium_kit.errors import (
    CONFLICT_DETAIL,
    INTERNAL_ERROR,
    PROBLEM_JSON,
    RETRY_AFTER_S,
    problem_body,
    transient_failure,
)
from tablium_kit.inputs import control_character_in
from tablium_kit.net import (
    QUERY_CREDENTIALS,
    REQUEST_ID_HEADER,
    RequestContext,
    real_client,
    request_context,
    take_query_credentials,
)
from tablium_kit.observability import UNOBSERVED_PATHS

log = structlog.get_logger("tablium.kit")
_UNOBSERVED = frozenset(UNOBSERVED_PATHS)
# A status, its headers and its body: what the layer answers itself.
_Answer = tuple[int, list[tuple[bytes, bytes]], bytes]


def _answer(status: int, body: bytes, *extra: tuple[bytes, bytes]) -> _Answer:
    headers = [(b"content-type", PROBLEM_JSON.encode()), (b"content-length", str(len(body)).encode()), *extra]
    return status, headers, body


_INTERNAL_ERROR = _answer(500, json.dumps(INTERNAL_ERROR).encode())
_CONFLICT = _answer(409, problem_body(409, CONFLICT_DETAIL))
_UNAVAILABLE = _answer(
    503,
    problem_body(503, "a dependency is unavailable; try again shortly"),
    (b"retry-after", str(RETRY_AFTER_S).encode()),
)
_HTTP: Final = ScopeType.HTTP  # an enum member lookup per use costs more than the comparison
# The route label of requests that matched no route (404, 405): one series, whatever the path.
UNMATCHED_ROUTE: Final = "<unmatched>"
_LABELS = ["method", "path", "status_code", "app_name"]
# prometheus_client's default latency buckets, in seconds (+Inf is the last slot).
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
SeriesKey = tuple[str, str, int, str]  # method, route template, status, app
# An HTTP/1.1 server that answers while the client is still sending its body, then closes, resets the
# connection (the unread bytes in its socket make the kernel send RST), and the client's kernel drops the
# answer with it: a 413 for a 4 MB body arrived as a connection reset. So a body left unread when the
# answer starts (over the size limit, or refused before the handler read it) is read and dropped first,
# up to this much and this long; past that the answer says "Connection: close" and the server closes.
DRAIN_MAX_BYTES: Final = 16 * 1024 * 1024
DRAIN_MAX_S: Final = 5.0
_CLOSE: Final = (b"connection", b"close")
_BODYLESS: Final = frozenset({"GET", "HEAD"})


# Made request ids: a random per-process start plus a counter, 32 hex digits, unique
# across processes and cheaper than reading the OS's random source for each request.
# A credential's name, or any percent-encoding (a name spelled encoded is still that name once parsed).
_CREDENTIAL_MARKERS = (b"%", *(name.encode() for name in QUERY_CREDENTIALS))
_ID_START = int.from_bytes(os.urandom(10)) << 48
_id_counter = count()


class RequestMetrics(Collector):
    """Request count, latency histogram and 5xx count per method, route template, status and app.

    prometheus_client's metric objects take a lock and run several checks on every
    update (about 3 µs per request for the three of them). Here a request adds to
    plain per-series counters, from the event loop's thread only, and metric
    families are built when ``/metrics`` is scraped: ``tablium_requests_total``,
    ``tablium_request_duration_seconds`` and ``tablium_requests_error_total``.
    """

    def __init__(self) -> None:
        # Per series: one count per bucket (the last is +Inf), then the sum of seconds.
        self.series: dict[SeriesKey, list[float]] = {}

    def add_series(self, key: SeriesKey) -> list[float]:
        counts = self.series[key] = [0] * (len(_BUCKETS) + 1) + [0.0]
        return counts

    def observe(self, key: SeriesKey, seconds: float) -> None:
        counts = self.series.get(key) or self.add_series(key)
        counts[bisect_left(_BUCKETS, seconds)] += 1  # "le" buckets: a value equal to a bound is in it
        counts[-1] += seconds

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily("tablium_requests", "Requests handled", labels=_LABELS)
        durations = HistogramMetricFamily(
            "tablium_request_duration_seconds", "Request duration, in seconds", labels=_LABELS
        )
        errors = CounterMetricFamily("tablium_requests_error", "Requests answered with a 5xx", labels=_LABELS)
        bounds = [*(str(bound) for bound in _BUCKETS), "+Inf"]
        for (method, path, status, app_name), counts in list(self.series.items()):
            labels = [method, path, str(status), app_name]
            cumulative = list(accumulate(counts[:-1]))
            requests.add_metric(labels, cumulative[-1])
            durations.add_metric(labels, list(zip(bounds, cumulative, strict=True)), counts[-1])
            errors.add_metric(labels, cumulative[-1] if status >= 500 else 0)
        yield from (requests, durations, errors)


REQUEST_METRICS = RequestMetrics()
REGISTRY.register(REQUEST_METRICS)


# Every response of a JSON API, as OWASP's REST cheat sheet has them: no MIME sniffing, no framing, no
# referrer leaks, and nothing stored by caches unless the handler says otherwise (tokens, profiles).
# HSTS belongs to the TLS edge (the gateway), not to services speaking plain HTTP behind it.
_SECURITY_HEADERS: Final = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"content-security-policy", b"frame-ancestors 'none'"),
)
_NO_STORE: Final = (b"cache-control", b"no-store")


def _with_security_headers(headers: Iterable[tuple[bytes, bytes]], request_id: bytes) -> list[tuple[bytes, bytes]]:
    out = [*headers, (REQUEST_ID_HEADER, request_id), *_SECURITY_HEADERS]
    for name, _ in out:  # a plain loop: a generator in any() cost more than the rest of this function
        if name == b"cache-control":
            return out
    out.append(_NO_STORE)
    return out


async def drain_body(receive: Receive, max_bytes: int = DRAIN_MAX_BYTES, max_s: float = DRAIN_MAX_S) -> bool:
    """Read and drop the rest of a request's body: True when it ended (or the client left) within the bounds."""
    read = 0
    try:
        async with asyncio.timeout(max_s):
            while True:
                message = await receive()
                if message["type"] != "http.request":  # http.disconnect: nothing more will come
                    return True
                if not message.get("more_body", False):
                    return True
                read += len(message.get("body", b""))
                if read > max_bytes:
                    return False
    except TimeoutError:
        return False


def _sends_body(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    """The request has a body the client is sending now (not waiting for "100 Continue" first: reading
    that body would only ask the client for it)."""
    framed = False
    for name, value in headers:
        if name == b"content-length":
            framed = value != b"0"
        elif name == b"transfer-encoding":
            framed = True
        elif name == b"expect" and value.lower() == b"100-continue":
            return False
    return framed


class _BodyReceive:
    """The server's ``receive``, noting when the request's body has been read to its end."""

    __slots__ = ("ended", "receive")

    def __init__(self, receive: Receive) -> None:
        self.receive = receive
        self.ended = False

    async def __call__(self) -> ReceiveMessage:
        message = await self.receive()
        if not message.get("more_body", False):  # its last part, or http.disconnect
            self.ended = True
        return message


async def _refuse(send: Send, status: int, detail: str, request_id: bytes) -> None:
    status, headers, body = _answer(status, problem_body(status, detail))
    await send(
        {"type": "http.response.start", "status": status, "headers": _with_security_headers(headers, request_id)}
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})


_FAILURE_KEY: Final = "tablium.failure"


async def raise_failure(scope: Scope, receive: Receive, send: Send) -> None:
    """What Litestar's error handling wraps once the kit's layer calls the router itself: it raises what the
    router raised, for that error handling to answer (:class:`ServiceLayer`)."""
    raise scope.pop(_FAILURE_KEY)  # type: ignore[typeddict-item]


def around_router(app: Litestar, *, trusted_proxies: list[str], app_name: str) -> ServiceLayer:
    """The kit's layer for ``app``, in place of Litestar's outer error handling when nothing sits between that
    and the router (no CORS, no tracing middleware); otherwise around whatever Litestar built."""
    handler = app.asgi_handler
    if getattr(handler, "app", None) is app.asgi_router:
        handler.app = raise_failure  # type: ignore[attr-defined]
        return ServiceLayer(app.asgi_router, trusted_proxies=trusted_proxies, app_name=app_name, errors=handler)
    return ServiceLayer(handler, trusted_proxies=trusted_proxies, app_name=app_name)


class ServiceLayer:
    """Client address, request id, input and header hygiene, request session and request metrics, in one layer.

    Litestar wraps its router in its error handling (an ``ExceptionHandlerMiddleware``): one more call and one
    more ``send`` wrapper per request, only to know whether the response started, which this layer knows
    anyway. So the layer can take its place on the way in (:func:`around_router`): ``app`` is then the router,
    and ``errors`` Litestar's own error handling with :func:`raise_failure` inside it, which the layer calls
    only when the router raised: the app's and the route's exception handlers, Litestar's logging and its
    "exception after the response started" rule answer as before, paid for only when something failed.
    """

    def __init__(
        self, app: ASGIApp, *, trusted_proxies: list[str], app_name: str, errors: ASGIApp | None = None
    ) -> None:
        self.app = app
        self.trusted = [ipaddress.ip_network(proxy, strict=False) for proxy in trusted_proxies]
        self.app_name = app_name
        self.errors = errors
        self.series = REQUEST_METRICS.series

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        start = time.perf_counter()
        method: str = scope["method"] if scope["type"] == _HTTP else ""  # a WebSocket has none
        http = bool(method)
        forwarded_for: str | None = None
        request_id: bytes | None = None
        authorization: bytes | None = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = authorization or value  # the first one counts
            elif name == b"x-forwarded-for":
                forwarded_for = value.decode("latin-1")
            elif name == REQUEST_ID_HEADER:
                request_id = value[:128]
        client = scope.get("client")
        if client and forwarded_for:
            scope["client"] = (real_client(client[0], forwarded_for, self.trusted), client[1])
        request_id = request_id or b"%032x" % (_ID_START + next(_id_counter))
        path: str = scope["path"]
        query: bytes = scope.get("query_string", b"")
        # A printable path has no control character (C0, DEL and C1 are all unprintable): the regex scan
        # runs only for the others, or when there is a query string.
        if http and (query or not path.isprintable()) and (where := control_character_in(path, query)):
            # Refused before anything reads them: Postgres refuses NUL in text (a 500), and logs would
            # carry the rest. Counted as one unmatched series, like a 404.
            await _refuse(send, 400, f"control characters are not accepted (in the {where})", request_id)
            REQUEST_METRICS.observe((method, UNMATCHED_ROUTE, 400, self.app_name), time.perf_counter() - start)
            return
        credentials: dict[str, str] | None = None
        if query and any(marker in query for marker in _CREDENTIAL_MARKERS):  # parsed only when it may hold one
            scope["query_string"], credentials = take_query_credentials(query)
        context = request_context.set(RequestContext(request_id, authorization, credentials))
        status = 0  # until the response starts (an exception that escapes everything is counted as a 500)
        failure: _Answer | None = None  # what replaces the handler's answer when its commit failed
        # HTTP/2 ends a stream without touching the connection: only HTTP/1.x bodies need reading to the end.
        # GET and HEAD are not looked at (no client of these APIs sends them a body, and reads are the hot path).
        body: _BodyReceive | None = None
        if http and method not in _BODYLESS and scope.get("http_version") != "2" and _sends_body(scope["headers"]):
            receive = body = _BodyReceive(receive)

        async def send_tagged(message: Message) -> None:
            nonlocal status, failure
            if message["type"] == "http.response.start":
                status = message["status"]
                if REQUEST_SESSION_KEY in scope["state"]:
                    try:
                        await finish_request_session(scope, status)
                    except IntegrityError as exc:
                        # A unique/foreign-key race lost at commit (no flush before): a conflict, like
                        # one raised in the handler, whose answer and effects are gone.
                        log.warning("request session commit conflicted", path=scope["path"], error=str(exc.orig))
                        failure = _CONFLICT
                    except Exception as exc:
                        # Litestar counts the response as started, so raising would only abort it: the
                        # client is told 503 (the database went away before the commit: try again) or
                        # 500 instead of the handler's answer, whose effects are gone.
                        if transient_failure(exc):
                            log.warning("request session commit failed transiently", path=scope["path"])
                            failure = _UNAVAILABLE
                        else:
                            log.exception("request session commit failed", path=scope["path"], status=status)
                            failure = _INTERNAL_ERROR
                    if failure is not None:
                        status, headers, _ = failure
                        message = {"type": "http.response.start", "status": status, "headers": headers}
                headers = _with_security_headers(message.get("headers", ()), request_id)
                # After the commit: a slow client's body is not read with a transaction open.
                if body is not None and not body.ended:
                    body.ended = True
                    if not await drain_body(body.receive):
                        headers.append(_CLOSE)
                message["headers"] = headers
            elif failure is not None and message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return  # the handler's body is not sent; the error's is, in place of its last part
                message = {"type": "http.response.body", "body": failure[2], "more_body": False}
            await send(message)

        # A WebSocket's messages pass through untouched (no response start, no request session to commit):
        # its sends go straight to the server, one coroutine less on every frame of the table sockets.
        outgoing: Send = send_tagged if http else send
        try:
            try:
                await self.app(scope, receive, outgoing)
            except Exception as exc:
                if self.errors is None:
                    raise
                if status:  # Litestar's rule: an error after the response started is not answered again
                    ScopeState.from_scope(scope).response_started = True
                scope[_FAILURE_KEY] = exc  # type: ignore[typeddict-unknown-key]
                await self.errors(scope, receive, outgoing)
        finally:
            if REQUEST_SESSION_KEY in scope["state"]:
                # No response was started (an escaped error, a websocket): nothing is committed.
                await finish_request_session(scope, 500)
            request_context.reset(context)
            if http and scope["path"] not in _UNOBSERVED:
                # REQUEST_METRICS.observe, inlined: it runs for every request
                key = (method, scope.get("path_template", UNMATCHED_ROUTE), status or 500, self.app_name)
                counts = self.series.get(key) or REQUEST_METRICS.add_series(key)
                seconds = time.perf_counter() - start
                counts[bisect_left(_BUCKETS, seconds)] += 1  # "le" buckets: a value equal to a bound is in it
                counts[-1] += seconds
