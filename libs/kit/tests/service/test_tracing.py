"""With tracing on, requests and their SQL become spans, and log lines carry the trace id."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from litestar import get
from litestar.testing import AsyncTestClient
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy import text

from tablium_kit.app import ServiceDefinition, create_service_app
from tablium_kit.deps import DbSession
from tablium_kit.net import request_context, take_query_credentials
from tablium_kit.observability import get_logger, tracer_provider
from tablium_kit.settings import ServiceSettings


@get("/api/v1/traced")
async def traced(db_session: DbSession) -> dict[str, int]:
    get_logger("tablium.test").warning("inside the handler")
    value = await db_session.scalar(text("SELECT 41 + 1"))
    return {"value": int(value or 0)}


@get("/api/v1/credentials")
async def credentials() -> dict[str, object]:
    """What a handler sees of a request carrying credentials in its query string."""
    request = request_context.get()
    assert request is not None
    return {"credentials": request.query_credentials}


@pytest.fixture(scope="module")
async def traced_client(make_database: Callable[[str], Awaitable[str]]) -> AsyncIterator[AsyncTestClient]:
    settings = ServiceSettings.from_env(
        "traced",
        {
            "TABLIUM_TRACED_DATABASE_URL": await make_database("traced"),
            "TABLIUM_ENVIRONMENT": "test",
            "TABLIUM_TRACED_TRACING": "true",
        },
    )
    app = create_service_app(ServiceDefinition(settings=settings, title="traced", route_handlers=[traced, credentials]))
    async with AsyncTestClient(app=app) as client:
        yield client


async def test_http_and_sql_spans_share_one_trace(
    traced_client: AsyncTestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    exporter = InMemorySpanExporter()
    tracer_provider(ServiceSettings.from_env("traced", {})).add_span_processor(SimpleSpanProcessor(exporter))
    parent_trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    response = await traced_client.get(
        "/api/v1/traced", headers={"traceparent": f"00-{parent_trace}-00f067aa0ba902b7-01"}
    )
    assert response.json() == {"value": 42}
    spans = exporter.get_finished_spans()
    http_spans = [s for s in spans if s.kind.name == "SERVER"]
    sql_spans = [s for s in spans if "SELECT" in s.name or s.attributes.get("db.statement", "").startswith("SELECT")]
    assert http_spans, [s.name for s in spans]
    assert sql_spans, [s.name for s in spans]
    # The incoming W3C trace context is continued, not replaced.
    assert {format(s.context.trace_id, "032x") for s in http_spans + sql_spans} == {parent_trace}

    logged = [json.loads(line) for line in capsys.readouterr().out.splitlines() if "inside the handler" in line]
    assert logged, "the handler's log line was not written as JSON"
    assert logged[0]["trace_id"] == parent_trace
    assert logged[0]["request_id"]
    assert logged[0]["service"] == "traced"


async def test_credentials_in_the_query_string_reach_the_handler_but_no_span(traced_client: AsyncTestClient) -> None:
    """A browser's WebSocket ticket or rejoin token travels in the query: the kit's layer takes it out
    before tracing (or anything else) reads the query string; only the request context keeps it."""
    exporter = InMemorySpanExporter()
    tracer_provider(ServiceSettings.from_env("traced", {})).add_span_processor(SimpleSpanProcessor(exporter))
    secret, rejoin = "s3cr3t-ticket-value-0123456789", "r3join-token-value-9876543210"
    response = await traced_client.get(f"/api/v1/credentials?v=1&ticket={secret}&%72ejoin={rejoin}")
    assert response.json() == {"credentials": {"ticket": secret, "rejoin": rejoin}}
    recorded = json.dumps(
        [[s.name, {k: str(v) for k, v in (s.attributes or {}).items()}] for s in exporter.get_finished_spans()]
    )
    assert "v=1" in recorded, recorded  # spans do record the query string: the rest of it
    for leaked in (secret, rejoin, "ticket", "ejoin"):
        assert leaked not in recorded, recorded


def test_take_query_credentials_keeps_everything_else() -> None:
    assert take_query_credentials(b"v=2&ticket=abc&x=%20y&ticket=second") == (b"v=2&x=+y", {"ticket": "abc"})
    assert take_query_credentials(b"a=1") == (b"a=1", {})
