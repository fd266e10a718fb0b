"""Logs, traces and metrics, configured the same way for every service.

* Logs: structlog, one JSON object per line, carrying the service name, the
  request id and the current trace/span ids.
* Traces: OpenTelemetry; spans for HTTP (Litestar's plugin), SQL (SQLAlchemy
  instrumentation), Redis (redis instrumentation) and messaging (the kit's
  relay/consumer). Exported over OTLP/HTTP when an endpoint is configured.
* Metrics: Prometheus, per-route request counts and latency histograms from
  the kit's middleware (:mod:`tablium_kit.middleware`), exposed by Litestar's
  ``PrometheusController``; the messaging code adds its own gauges and counters.
"""

from __future__ import annotations

import logging
from typing import Any

import msgspec
import structlog
from litestar.logging.config import LoggingConfig, StructLoggingConfig
from litestar.middleware.logging import LoggingMiddlewareConfig
from litestar.plugins.opentelemetry import OpenTelemetryConfig, OpenTelemetryPlugin
from litestar.plugins.prometheus import PrometheusController
from litestar.plugins.structlog import StructlogConfig, StructlogPlugin
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from sqlalchemy.ext.asyncio import AsyncEngine
from structlog.typing import EventDict, Processor, WrappedLogger

from tablium_kit.net import request_context
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
    request = request_context.get()
    if request is not None:
        event["request_id"] = request.request_id
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


# Libraries that log a line per request at INFO (httpx: "HTTP Request: POST ..."): like the access logs
# below, one line for every wallet call a top-up or a hand's rake makes cost the lobby more CPU than some
# of its hot path (ADR 0012, seventh pass); their warnings and errors still show.
_PER_REQUEST_LOGGERS = ("httpx", "httpcore")


def logging_plugin(settings: ServiceSettings) -> StructlogPlugin:
    level = logging.getLevelName(settings.log_level.upper())
    # The standard library's loggers (libraries) at the service's level too, not Litestar's default INFO.
    level_name = logging.getLevelName(level) if isinstance(level, int) else "INFO"
    quiet = logging.getLevelName(max(logging.WARNING, level if isinstance(level, int) else logging.INFO))
    config = StructLoggingConfig(
        processors=_processors(settings.service_name, settings.log_json),
        wrapper_class=structlog.make_filtering_bound_logger(level if isinstance(level, int) else logging.INFO),
        log_exceptions="never",  # the kit's 500 handler logs them once, with context
        pretty_print_tty=False,
        # Libraries log through the standard library; render those lines as JSON too.
        standard_lib_logging_config=LoggingConfig(
            root={"handlers": ["queue_listener"], "level": level_name},
            loggers={
                "litestar": {"level": level_name, "handlers": ["queue_listener"], "propagate": False},
                **{name: {"level": quiet} for name in _PER_REQUEST_LOGGERS},
            },
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
            },
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


class MetricsController(PrometheusController):
    path = "/metrics"
    include_in_schema = False


def get_logger(name: str, **bound: Any) -> Any:
    return structlog.get_logger(name, **bound)
