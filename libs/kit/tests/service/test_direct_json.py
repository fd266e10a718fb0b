"""Plain JSON routes are answered by the kit's direct handler with the bytes and headers Litestar would send."""

from __future__ import annotations

import datetime
import decimal
import uuid
from typing import Any

import msgspec
import pytest
from litestar import Controller, Litestar, Response, get, post
from litestar.datastructures import CacheControlHeader, ResponseHeader
from litestar.types import Message

from tablium_kit.app import ServiceDefinition, create_service_app
from tablium_kit.middleware import ServiceLayer
from tablium_kit.responses import JsonAnswer
from tablium_kit.settings import ServiceSettings


class Chips(msgspec.Struct):
    player: uuid.UUID
    amount: decimal.Decimal
    at: datetime.datetime
    note: str | None = None


CHIPS = Chips(uuid.UUID(int=7), decimal.Decimal("12.50"), datetime.datetime(2026, 12, 5, 21, 0, tzinfo=datetime.UTC))


class Answers(Controller):
    path = "/answers"

    @get("/struct", sync_to_thread=False)
    def struct(self) -> Chips:
        return CHIPS

    @get("/dict")
    async def mapping(self) -> dict[str, Any]:
        return {"chips": CHIPS, "id": uuid.UUID(int=1), "when": datetime.date(2026, 12, 5), "stack": [1, 2.5]}

    @get("/list")
    async def listing(self) -> list[Chips]:
        return [CHIPS, CHIPS]

    @post("/created")
    async def created(self) -> Chips:
        return CHIPS

    @get("/headers", response_headers=[ResponseHeader(name="x-table", value="7")])
    async def with_headers(self) -> dict[str, int]:
        return {"table": 7}

    @get("/cached", cache_control=CacheControlHeader(max_age=60))
    async def cached(self) -> dict[str, int]:
        return {"table": 7}

    @get("/response")
    async def response(self) -> Any:
        return Response({"table": 7}, headers={"x-table": "7"}, status_code=202)

    @get("/text")
    async def text(self) -> Any:
        return "not json"

    @get("/bytes")
    async def raw(self) -> Any:
        return b'{"raw":true}'

    @get("/none", status_code=200)
    async def nothing(self) -> None:
        return None

    @get("/unencodable")
    async def unencodable(self) -> dict[str, Any]:
        return {"what": object()}


@get("/answers/alone", sync_to_thread=False)
def alone() -> dict[str, int]:
    return {"table": 7}


# Decided from the route's configuration; what a handler returns at run time that isn't a Struct, a dict or a
# list (a Response, a string, bytes, None, ...) goes on to Litestar's own handler.
DIRECT = {"alone", "struct", "mapping", "listing", "created", "nothing", "response", "text", "raw", "unencodable"}
PATHS = [
    ("GET", "/answers/alone"),
    ("GET", "/answers/struct"),
    ("GET", "/answers/dict"),
    ("GET", "/answers/list"),
    ("POST", "/answers/created"),
    ("GET", "/answers/headers"),
    ("GET", "/answers/cached"),
    ("GET", "/answers/response"),
    ("GET", "/answers/text"),
    ("GET", "/answers/bytes"),
    ("GET", "/answers/none"),
]
# What the kit's layer adds to every answer, the same whichever handler made it.
LAYER_HEADERS = {
    b"x-request-id",
    b"x-content-type-options",
    b"x-frame-options",
    b"referrer-policy",
    b"content-security-policy",
}
NO_STORE = (b"cache-control", b"no-store")  # added when the handler's answer has no cache-control


async def _answer(app: Litestar, method: str, path: str) -> list[Message]:
    """The messages ``app`` sends for one request."""
    sent: list[Message] = []
    scope = {
        "type": "http",
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"test")],
        "client": ("127.0.0.1", 5000),
        "server": ("test", 80),
    }

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)  # type: ignore[arg-type]
    return sent


@pytest.fixture(scope="module")
def kit_app(sample_settings: ServiceSettings) -> Litestar:
    definition = ServiceDefinition(settings=sample_settings, title="answers", route_handlers=[Answers, alone])
    return create_service_app(definition)


def test_only_plain_json_routes_get_the_direct_handler(kit_app: Litestar) -> None:
    direct = {
        handler.handler_name
        for route in kit_app.routes
        for handler in getattr(route, "route_handlers", [])
        if route.path.startswith("/answers")
        and "_direct_handler" in getattr(handler._response_handler_mapping["default_handler"], "__qualname__", "")
    }
    assert direct == DIRECT


@pytest.mark.parametrize(("method", "path"), PATHS)
async def test_the_kit_answers_as_litestar_does(kit_app: Litestar, method: str, path: str) -> None:
    bare = Litestar(route_handlers=[Answers, alone])
    expected = await _answer(bare, method, path)
    got = await _answer(kit_app, method, path)
    assert [m["type"] for m in got] == [m["type"] for m in expected]
    assert got[0]["status"] == expected[0]["status"]
    kept = [h for h in got[0]["headers"] if h[0] not in LAYER_HEADERS and h != NO_STORE]
    assert kept == expected[0]["headers"]
    assert [m.get("body") for m in got[1:]] == [m.get("body") for m in expected[1:]]


def test_another_app_serving_the_same_handler_keeps_litestars_answers(kit_app: Litestar) -> None:
    """Litestar's copies of a function handler share one memo of their response handlers: the kit's is this app's."""
    bare = Litestar(route_handlers=[alone])
    bare_alone = next(h for r in bare.routes for h in getattr(r, "route_handlers", []) if h.handler_name == "alone")
    assert "_direct_handler" not in getattr(bare_alone.get_response_handler(), "__qualname__", "")


async def test_a_direct_answer_is_the_encoded_body_and_its_two_headers(kit_app: Litestar) -> None:
    got = await _answer(kit_app, "POST", "/answers/created")
    body = msgspec.json.encode(CHIPS)
    assert got[0]["status"] == 201
    assert got[0]["headers"][:2] == [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    assert got[1] == {"type": "http.response.body", "body": body, "more_body": False}
    answer = JsonAnswer(201, body)
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    await answer({}, None, send)  # type: ignore[arg-type]
    assert sent == [{**got[0], "headers": got[0]["headers"][:2]}, got[1]]


async def test_what_the_encoder_refuses_is_litestars_error(kit_app: Litestar) -> None:
    got = await _answer(kit_app, "GET", "/answers/unencodable")
    assert got[0]["status"] == 500
    assert (b"content-type", b"application/problem+json") in got[0]["headers"]


async def test_the_layer_calls_the_router_and_litestars_error_handling_answers_failures(kit_app: Litestar) -> None:
    layer = kit_app.asgi_handler
    assert isinstance(layer, ServiceLayer)
    assert layer.app is kit_app.asgi_router  # no ExceptionHandlerMiddleware in between on the way in
    assert layer.errors is not None
    missing = await _answer(kit_app, "GET", "/answers/nowhere")
    assert missing[0]["status"] == 404
    assert (b"content-type", b"application/problem+json") in missing[0]["headers"]
    assert any(name == b"x-request-id" for name, _ in missing[0]["headers"])
