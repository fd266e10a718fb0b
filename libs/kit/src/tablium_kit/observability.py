"""Logs, traces and metrics, configured the same way for every service.

* Logs: structlog, one JSON object per line, carrying the service name, the
  request id and the current trace/span ids.
* Traces: OpenTelemetry; spans for HTTP (Litestar's plugin), SQL (SQLAlchemy
  instrumentation), Redis (redis instrumentation) and messaging (the kit's
  relay/consumer). Exported over OTLP/HTTP when an endpoint is configured.
* Metrics: Prometheus, per-route request counts and latency histograms from
  Litestar's plugin; the messaging code adds its own gauges and counters.
"""

from __future__ import annotations

import logging
import time
from typing import Any, ClassVar

import msgspec
import structlog
from litestar.enums import ScopeType
from litestar.logging.config import LoggingConfig, StructLoggingConfig
from litestar.middleware.logging import LoggingMiddlewareConfig
from litestar.plugins.opentelemetry import OpenTelemetryConfig, OpenTelemetryPlugin
from litestar.plugins.prometheus import PrometheusController
from litestar.plugins.structlog import StructlogConfig, StructlogPlugin
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from prometheus_client import Counter, Histogram
from sqlalchemy.ext.asyncio import AsyncEngine
from structlog.typing import EventDict, Processor, WrappedLogger

from tablium_kit.net import request_id_var
from tablium_kit.settings import ServiceSettings

# Probes and scrapes would drown the real traffic in metrics and traces.
UNOBSERVED_PATHS = ["/health", "/ready", "/metrics"]


# Log records may carry values JSON does not know (types, exceptions from libraries'
# ``extra``); logging them by ``repr`` beats losing the line.
_json = msgspec.json.Encoder(enc_hook=repr)


def _json_bytes(event: EventDict, **_: Any) -> bytes:
    return _json.encode(event)


def _json_text(event: EventDict, **_: Any) -> str:
    return _json.encode(event).decode()


def _add_request_context(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    request_id = request_id_var.get()
    if request_id is not None:
        event["request_id"] = request_id
    span = trace.get_current_span().get_span_context()
    if span.is_valid:
        event["trace_id"] = format(span.trace_id, "032x")
        event["span_id"] = format(span.span_id, "016x")
    return event


def _processors(service_name: str, as_json: bool) -> list[Processor]:
    def add_service(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
        event["service"] = service_name
        return event

    renderer: Processor = (
        structlog.processors.JSONRenderer(serializer=_json_bytes) if as_json else structlog.dev.ConsoleRenderer()
    )
    return [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        add_service,
        _add_request_context,
        structlog.processors.format_exc_info,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        renderer,
    ]


def logging_plugin(settings: ServiceSettings) -> StructlogPlugin:
    level = logging.getLevelName(settings.log_level.upper())
    config = StructLoggingConfig(
        processors=_processors(settings.service_name, settings.log_json),
        wrapper_class=structlog.make_filtering_bound_logger(level if isinstance(level, int) else logging.INFO),
        log_exceptions="never",  # the kit's 500 handler logs them once, with context
        pretty_print_tty=False,
        # Libraries log through the standard library; render those lines as JSON too.
        standard_lib_logging_config=LoggingConfig(
            formatters={
                "standard": {
                    "()": structlog.stdlib.ProcessorFormatter,
                    "processors": [
                        structlog.processors.TimeStamper(fmt="iso", utc=True),
                        structlog.stdlib.add_log_level,
                        structlog.stdlib.ExtraAdder(),
                        _add_request_context,
                        structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                        structlog.processors.JSONRenderer(serializer=_json_text),
                    ],
                }
            }
        ),
    )
    # Per-request access logs cost a large share of throughput; metrics and traces
    # record every request, the logs record what needs reading.
    return StructlogPlugin(
        StructlogConfig(
            structlog_logging_config=config,
            middleware_logging_config=LoggingMiddlewareConfig(),
            enable_middleware_logging=False,
        )
    )


_tracer_provider: TracerProvider | None = None


def tracer_provider(settings: ServiceSettings) -> TracerProvider:
    """The process's tracer provider, exporting over OTLP/HTTP when an endpoint is set.

    One per process, and it is the global one, so HTTP, SQL, Redis and messaging
    spans all land in the same place (OpenTelemetry refuses to replace a global
    provider once set, so an existing SDK provider is adopted).
    """
    global _tracer_provider
    if _tracer_provider is None:
        current = trace.get_tracer_provider()
        if isinstance(current, TracerProvider):
            _tracer_provider = current
            return current
        provider = TracerProvider(
            resource=Resource.create({"service.name": f"tablium-{settings.service_name}"}),
            sampler=ParentBased(TraceIdRatioBased(settings.trace_sample_ratio)),
        )
        if settings.otlp_endpoint:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=settings.otlp_endpoint)))
        trace.set_tracer_provider(provider)
        _tracer_provider = provider
    return _tracer_provider


def tracing_plugin(settings: ServiceSettings) -> OpenTelemetryPlugin:
    return OpenTelemetryPlugin(
        OpenTelemetryConfig(
            tracer_provider=tracer_provider(settings),
            exclude=UNOBSERVED_PATHS,
            exclude_spans=["receive", "send"],
        )
    )


def instrument_database(engine: AsyncEngine, provider: TracerProvider) -> None:
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    # Instrumentors act once per process: a service has one engine, so that is its engine.
    SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine, tracer_provider=provider, enable_commenter=False)


def instrument_redis(provider: TracerProvider) -> None:
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    instrumentor = RedisInstrumentor()
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument(tracer_provider=provider)


class MetricsMiddleware:
    """Per-route request count, latency histogram and 5xx count, labelled by route template.

    Litestar's Prometheus middleware builds a ``Request`` and resolves five label
    sets on every request, which costs more than a small handler; this one keeps
    the same metric names and labels but caches each label set's children, so a
    request costs two clock reads and two updates. Exposed by Litestar's
    ``PrometheusController`` at ``/metrics``.
    """

    _families: ClassVar[dict[str, tuple[Counter, Histogram, Counter]]] = {}

    def __init__(self, app: ASGIApp, app_name: str) -> None:
        self.app = app
        self.app_name = app_name
        if "tablium" not in self._families:
            labels = ["method", "path", "status_code", "app_name"]
            self._families["tablium"] = (
                Counter("tablium_requests_total", "Requests handled", labels),
                Histogram("tablium_request_duration_seconds", "Request duration, in seconds", labels),
                Counter("tablium_requests_error_total", "Requests answered with a 5xx", labels),
            )
        self.requests, self.durations, self.errors = self._families["tablium"]
        self._children: dict[tuple[str, str, int], tuple[Any, Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or scope["path"] in UNOBSERVED_PATHS:
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        status = 500  # what an exception that escapes everything becomes
        start = time.perf_counter()

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            key = (method, scope.get("path_template", scope["path"]), status)
            children = self._children.get(key)
            if children is None:
                values = (*key, self.app_name)
                children = (
                    self.requests.labels(*values),
                    self.durations.labels(*values),
                    self.errors.labels(*values),
                )
                self._children[key] = children
            children[0].inc()
            children[1].observe(time.perf_counter() - start)
            if status >= 500:
                children[2].inc()


class MetricsController(PrometheusController):
    path = "/metrics"
    include_in_schema = False


def get_logger(name: str, **bound: Any) -> Any:
    return structlog.get_logger(name, **bound)
