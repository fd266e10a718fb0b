"""The one pure-ASGI layer the kit puts around every route.

It does, per request: the real client address (from trusted forwarding headers),
the request id (taken or made, echoed, visible to log lines), authentication as
the route's OpenAPI security requirement says, the Prometheus request count
and latency, and the commit or rollback of the request's database session if a
handler opened one (``db.RequestSessions``). These were three middleware layers
and a hook on every message; each costs a call per request, which for a small
handler is a large share of the time (ADR 0001), so they are one.

Litestar builds this middleware once per route, after routing, so
``scope["route_handler"]`` and ``scope["path_template"]`` are known. An error
raised here would be answered by the application's outer exception handler,
past this layer's ``send`` (no request id, counted as a 500), so authentication
failures are answered here, through it.
"""

from __future__ import annotations

import ipaddress
import json
import os
import time
from bisect import bisect_left
from collections.abc import Iterator
from itertools import accumulate, count
from typing import Any, Final

import structlog
from litestar import Request
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client import REGISTRY, Metric
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from tablium_kit.auth import AccessTokenVerifier, ServiceTokens, bearer_token, required_schemes
from tablium_kit.db import REQUEST_SESSION_KEY, finish_request_session
from tablium_kit.errors import INTERNAL_ERROR, PROBLEM_JSON, ProblemError, problem_response
from tablium_kit.net import REQUEST_ID_HEADER, real_client, request_id_var
from tablium_kit.observability import UNOBSERVED_PATHS

log = structlog.get_logger("tablium.kit")
_UNOBSERVED = frozenset(UNOBSERVED_PATHS)
_INTERNAL_ERROR_BODY = json.dumps(INTERNAL_ERROR).encode()
_INTERNAL_ERROR_HEADERS = [
    (b"content-type", PROBLEM_JSON.encode()),
    (b"content-length", str(len(_INTERNAL_ERROR_BODY)).encode()),
]
_HTTP: Final = ScopeType.HTTP  # an enum member lookup per use costs more than the comparison
_LABELS = ["method", "path", "status_code", "app_name"]
# prometheus_client's default latency buckets, in seconds (+Inf is the last slot).
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
SeriesKey = tuple[str, str, int, str]  # method, route template, status, app


# Made request ids: a random per-process prefix and a counter, 32 hex digits, unique
# across processes and cheaper than reading the OS's random source for each request.
_ID_PREFIX = os.urandom(10).hex()
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

    def observe(self, key: SeriesKey, seconds: float) -> None:
        counts = self.series.get(key)
        if counts is None:
            counts = self.series[key] = [0] * (len(_BUCKETS) + 1) + [0.0]
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


class ServiceMiddleware:
    """Client address, request id, authentication and request metrics (:class:`RequestMetrics`), in one layer."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        trusted_proxies: list[str],
        app_name: str,
        access: AccessTokenVerifier,
        services: ServiceTokens,
    ) -> None:
        self.app = app
        self.trusted = [ipaddress.ip_network(proxy, strict=False) for proxy in trusted_proxies]
        self.app_name = app_name
        self.access = access
        self.services = services
        # A route's security never changes after start-up: resolved once per handler.
        self._schemes: dict[int, frozenset[str]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        start = time.perf_counter()
        forwarded_for: str | None = None
        request_id: str | None = None
        authorization: bytes | None = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = authorization or value  # the first one counts
            elif name == b"x-forwarded-for":
                forwarded_for = value.decode("latin-1")
            elif name == REQUEST_ID_HEADER:
                request_id = value.decode("latin-1")[:128]
        client = scope.get("client")
        if client and forwarded_for:
            scope["client"] = (real_client(client[0], forwarded_for, self.trusted), client[1])
        request_id = request_id or f"{_ID_PREFIX}{next(_id_counter):012x}"
        encoded_id = request_id.encode("latin-1")
        context = request_id_var.set(request_id)
        status = 500  # what an exception that escapes everything becomes
        commit_failed = False

        async def send_tagged(message: Message) -> None:
            nonlocal status, commit_failed
            if message["type"] == "http.response.start":
                status = message["status"]
                if REQUEST_SESSION_KEY in scope["state"]:
                    try:
                        await finish_request_session(scope, status)
                    except Exception:
                        # Litestar counts the response as started, so raising would only abort it:
                        # the client is told 500 instead of the handler's answer, whose effects are gone.
                        log.exception("request session commit failed", path=scope["path"], status=status)
                        commit_failed = True
                        status = 500
                        message = {"type": "http.response.start", "status": 500, "headers": _INTERNAL_ERROR_HEADERS}
                message["headers"] = [*message.get("headers", ()), (REQUEST_ID_HEADER, encoded_id)]
            elif commit_failed and message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return  # the handler's body is not sent; the error's is, in place of its last part
                message = {"type": "http.response.body", "body": _INTERNAL_ERROR_BODY, "more_body": False}
            await send(message)

        handler = scope["route_handler"]
        schemes = self._schemes.get(id(handler))
        if schemes is None:
            schemes = self._schemes[id(handler)] = required_schemes(handler)
        try:
            try:
                if "ServiceToken" in schemes:
                    scope["user"] = self.services.verify(bearer_token(authorization))
                elif "BearerToken" in schemes:
                    scope["user"] = await self.access.verify(bearer_token(authorization))
            except ProblemError as exc:
                if scope["type"] != _HTTP:
                    raise  # a websocket is closed by Litestar's exception handling
                request: Request[Any, Any, Any] = Request(scope, receive)
                await problem_response(exc, request).to_asgi_response(None, request)(scope, receive, send_tagged)
                return
            await self.app(scope, receive, send_tagged)
        finally:
            if REQUEST_SESSION_KEY in scope["state"]:
                # No response was started (an escaped error, a websocket): nothing is committed.
                await finish_request_session(scope, 500)
            request_id_var.reset(context)
            if scope["type"] == _HTTP and scope["path"] not in _UNOBSERVED:
                path = scope.get("path_template", scope["path"])
                REQUEST_METRICS.observe((scope["method"], path, status, self.app_name), time.perf_counter() - start)
