"""The service factory: one call builds a complete Tablium service.

A service hands in its settings, routers and migrations; the kit adds the
database session, problem+json errors, auth, health/readiness, metrics, traces,
structured logs, the forwarded-client fix-up and the event relay/consumer. So
every service's ``app.py`` stays a few lines and behaves the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import asyncpg
import structlog
from litestar import Litestar
from litestar.di import Provide
from litestar.exceptions import ImproperlyConfiguredException
from litestar.handlers import HTTPRouteHandler
from litestar.openapi import OpenAPIConfig
from litestar.routes import HTTPRoute
from litestar.types import ControllerRouterHandler
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from tablium_kit import db, migrations
from tablium_kit.auth import (
    SECURITY_COMPONENTS,
    AccessTokenVerifier,
    JwksKeySource,
    KeySource,
    RouteAuthenticator,
    ServiceTokens,
    ServiceTokenVerifier,
    ServiceTrust,
    accepted_services,
    authenticates,
    required_schemes,
)
from tablium_kit.errors import TRANSIENT_ERROR_HANDLERS, internal_error_handler, problem_details_plugin
from tablium_kit.health import HealthController, NotReady, Readiness
from tablium_kit.inputs import StrictJSONRequest
from tablium_kit.messaging import Consumer, MessagingTables, Relay
from tablium_kit.messaging.consumer import Handler
from tablium_kit.middleware import around_router
from tablium_kit.observability import (
    MetricsController,
    instrument_database,
    instrument_redis,
    logging_plugin,
    tracer_provider,
    tracing_plugin,
)
from tablium_kit.openapi import closed_schemas, document_problems
from tablium_kit.responses import answer_plain_json_directly
from tablium_kit.settings import ServiceSettings

log = structlog.get_logger("tablium.kit")

Hook = Callable[[Litestar], Awaitable[None]]


@dataclass
class ServiceDefinition:
    """What makes one service different from the others."""

    settings: ServiceSettings
    route_handlers: Sequence[ControllerRouterHandler]
    title: str
    version: str = "0.1.0"
    migrations_dir: Path | None = None
    uses_redis: bool = False
    # Verifies user tokens; defaults to the player service's JWKS.
    key_source: KeySource | None = None
    on_startup: Sequence[Hook] = ()
    on_shutdown: Sequence[Hook] = ()
    dependencies: dict[str, Provide] = field(default_factory=dict)
    signature_namespace: dict[str, Any] = field(default_factory=dict)
    # The service's outbox/inbox tables: given, the kit runs the outbox relay.
    messaging: MessagingTables | None = None
    # Event type -> handler: given, the kit runs a consumer on the service's queue.
    event_handlers: Mapping[str, Handler] = field(default_factory=dict)


def _constant(value: db.Reader) -> Callable[[], db.Reader]:
    def provide() -> db.Reader:
        return value

    return provide


def _check_authentication_cannot_be_skipped(app: Litestar, authenticator: RouteAuthenticator) -> None:
    """Refuse routes on which the kit's authentication would not run, or would let any service in.

    HTTP routes are authenticated by the application's ``before_request`` hook, which a
    router's, controller's or handler's own hook would replace; WebSocket routes have no
    such hook, so one declaring security must carry a guard that authenticates
    (:func:`authenticated`, or a kit role guard). A route taking service tokens names the
    services it accepts (``security=from_services(...)``).
    """
    for route in app.routes:
        # An HTTP route has a handler per method; WebSocket and ASGI routes have one.
        for handler in route.route_handlers if isinstance(route, HTTPRoute) else [route.route_handler]:
            if isinstance(handler, HTTPRouteHandler):
                if handler.resolve_before_request() is not authenticator:
                    raise ImproperlyConfiguredException(
                        f"{route.path}: a before_request hook of its own would skip the kit's authentication"
                    )
            elif required_schemes(handler) and not any(authenticates(guard) for guard in handler.guards or ()):
                raise ImproperlyConfiguredException(
                    f"{route.path}: a WebSocket route declaring security needs guards=[authenticated]"
                    " (or a kit role guard)"
                )
            if "ServiceToken" in required_schemes(handler) and not accepted_services(handler):
                raise ImproperlyConfiguredException(
                    f"{route.path}: an internal route names the services it accepts: security=from_services(...)"
                )


def _resolve_sync_dependencies_inline(app: Litestar) -> None:
    """Resolve a handler's synchronous dependencies one after the other, not in a task group.

    Litestar resolves the independent dependencies of a handler concurrently, in an anyio task group
    created per request, which pays when they wait on I/O; the kit's and the services' providers
    (``db_session``, ``db_reader``, a service's use-case object) return at once, and the task group
    cost ~7% of a database read's CPU (py-spy, ADR 0001 "Hot reads"). Each batch's dependencies don't
    depend on one another, so running the synchronous ones in turn is the same resolution; async
    providers (which might wait) keep Litestar's concurrency. Done once, at start-up.
    """
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for _, kwargs_model in route.route_handler_map.values():
            batches: list[set[Any]] = []
            for batch in kwargs_model.dependency_batches:
                waiting = {d for d in batch if not d.provide.has_sync_callable}
                batches += [{d} for d in batch if d not in waiting]
                if waiting:
                    batches.append(waiting)
            kwargs_model.dependency_batches = batches


async def _migrate(settings: ServiceSettings, migrations_dir: Path) -> None:
    await db.ensure_database(settings.database_url)
    await anyio.to_thread.run_sync(migrations.upgrade, settings.database_url, migrations_dir)


async def _stop_consumer(consumer: Consumer, starting: asyncio.Task[None]) -> None:
    starting.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await starting
    await consumer.stop()


def create_service_app(service: ServiceDefinition) -> Litestar:
    settings = service.settings
    engine: AsyncEngine = db.create_engine(settings.database_url, pool_size=settings.db_pool_size)
    reader = db.Reader(settings.database_url, pool_size=settings.db_read_pool_size)
    readiness = Readiness()
    access = AccessTokenVerifier(
        service.key_source or JwksKeySource(settings.jwks_url, cache_seconds=settings.jwks_cache_seconds),
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
    )
    # This service's identity for the services it calls (app.state.service_tokens), and the verifier of
    # the tokens other services send it: its own key and the trust store, both from settings.
    service_tokens = ServiceTokens.from_settings(settings)
    services = ServiceTokenVerifier(settings.service_name, ServiceTrust.from_settings(settings))
    authenticator = RouteAuthenticator(access, services)

    async def check_database() -> None:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    readiness.add("database", check_database)
    redis = Redis.from_url(settings.redis_url, decode_responses=True) if service.uses_redis else None
    if redis is not None:

        async def check_redis() -> None:
            await redis.ping()

        readiness.add("redis", check_redis)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        if settings.migrates_on_start and service.migrations_dir is not None:
            await _migrate(settings, service.migrations_dir)
        if settings.tracing_enabled:
            instrument_database(engine, tracer_provider(settings))
        async with AsyncExitStack() as stack:
            # Opened now, so no request pays for a connect; a database still down is retried on first use.
            with contextlib.suppress(OSError, asyncpg.PostgresError):
                await reader.start()
            stack.push_async_callback(reader.close)
            if redis is not None:
                if settings.tracing_enabled:
                    instrument_redis(tracer_provider(settings))
                stack.push_async_callback(redis.aclose)
            for hook in service.on_startup:
                await hook(app)
            if service.messaging is not None:
                sessions = db.session_factory(engine)
                relay = Relay(settings, sessions, service.messaging)
                await relay.start()
                stack.push_async_callback(relay.stop)
                app.state.relay = relay

                async def check_broker() -> None:
                    if not relay.broker_connected:
                        raise ConnectionError("no broker connection")

                readiness.add("broker", check_broker)
                if service.event_handlers:
                    consumer = Consumer(
                        settings,
                        sessions,
                        service.messaging,
                        batch_size=settings.consumer_batch_size,
                        batches_in_flight=settings.consumer_batches_in_flight,
                    )
                    for event_type, handler in service.event_handlers.items():
                        consumer.handler(event_type)(handler)
                    # Like the relay, a consumer must not keep the service down while the broker is:
                    # it keeps trying in the background and /ready says why it is not running.
                    task = asyncio.create_task(consumer.keep_starting(), name="consumer-start")
                    stack.push_async_callback(_stop_consumer, consumer, task)

                    async def check_consumer() -> None:
                        if consumer.state != "running":
                            raise NotReady(
                                f"{consumer.state}: {consumer.reason}" if consumer.reason else consumer.state
                            )

                    readiness.add("consumer", check_consumer)
            log.info("service started", port=settings.port, environment=settings.environment)
            try:
                yield
            finally:
                for hook in service.on_shutdown:
                    await hook(app)
        await engine.dispose()

    app = Litestar(
        route_handlers=[HealthController, MetricsController, *service.route_handlers],
        lifespan=[lifespan],
        plugins=[
            problem_details_plugin(),
            logging_plugin(settings),
            *([tracing_plugin(settings)] if settings.tracing_enabled else []),
        ],
        # Authentication after routing, by the route's declared security (auth.RouteAuthenticator).
        before_request=authenticator,
        exception_handlers={
            Exception: internal_error_handler,
            # A database outage is a 503 with Retry-After, not a 500 (errors.py).
            **TRANSIENT_ERROR_HANDLERS,
        },
        openapi_config=OpenAPIConfig(
            title=service.title,
            version=service.version,
            components=SECURITY_COMPONENTS,
            path="/schema",
        ),
        dependencies={
            # Committed or rolled back by the kit's layer (see db.RequestSessions).
            "db_session": Provide(db.RequestSessions(engine), sync_to_thread=False),
            "db_reader": Provide(_constant(reader), sync_to_thread=False),
            **service.dependencies,
        },
        signature_namespace={
            "AsyncEngine": AsyncEngine,
            "AsyncSession": AsyncSession,
            "Reader": db.Reader,
            **service.signature_namespace,
        },
        request_max_body_size=settings.max_request_body_bytes,
        # JSON bodies decoded strictly into the handler's type, JSON content types only (inputs.py).
        request_class=StrictJSONRequest,
        debug=False,
    )
    _check_authentication_cannot_be_skipped(app, authenticator)
    _resolve_sync_dependencies_inline(app)
    # Plain JSON answers encoded and sent without Litestar's per-request response objects (responses.py).
    answer_plain_json_directly(app)
    # Litestar builds the document once and serves that object; every route is registered by now,
    # so the kit's rewrite is what /schema serves.
    body_types = [
        handler.parsed_data_field.annotation
        for route in app.routes
        if isinstance(route, HTTPRoute)
        for handler in route.route_handlers
        if handler.parsed_data_field is not None
    ]
    document_problems(app.openapi_schema, closed=closed_schemas(body_types))
    # Around the router, in place of Litestar's outer error handling, whose answers it passes on: every response
    # passes through it (middleware.py).
    app.asgi_handler = around_router(
        app, trusted_proxies=settings.trusted_proxies, app_name=f"tablium-{settings.service_name}"
    )
    app.state.settings = settings
    app.state.authenticator = authenticator
    app.state.readiness = readiness
    app.state.db_engine_instance = engine
    app.state.service_tokens = service_tokens
    app.state.access_tokens = access
    app.state.redis = redis
    return app
