"""JSON answers of plain handlers, encoded and sent without Litestar's per-request response objects.

A handler returning data (a Struct, a dict, a list) is answered by Litestar's data handler: per request it
builds a ``Response``, merges the route's headers and cookies into it, resolves its type encoders and
serializer, encodes, then builds an ``ASGIResponse`` with a case-insensitive header container, and sends it:
on a small route more of the request's Python than the kit's whole layer (ADR 0001, "Sixth pass").

For a route whose answer can only be a JSON body with its status and the two headers Litestar sets
(``content-type``, ``content-length``), which is decided once at start-up from what Litestar resolved for it
(no route headers, cookies, cache-control or etag, no background task, no after-request hook, no return DTO,
Litestar's own ``Response`` class, a status that carries a body), :func:`answer_plain_json_directly` puts a
handler in Litestar's place that encodes with the same serializer (the route's type encoders, once) and sends
the same two messages. Whatever else the handler returns at run time (a ``Response``, bytes, a string, a
value the encoder refuses) goes to Litestar's own handler, so the answer is Litestar's in every case.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import msgspec
from litestar import Litestar, Response
from litestar.enums import MediaType
from litestar.handlers import HTTPRouteHandler
from litestar.routes import HTTPRoute
from litestar.serialization import get_serializer
from litestar.types import ASGIApp, Receive, Scope, Send
from litestar.types.empty import Empty
from litestar.utils import is_async_callable

_JSON_TYPE: Final = (b"content-type", b"application/json")
_NO_BODY_STATUSES: Final = frozenset({204, 304})


class JsonAnswer:
    """An encoded JSON body and its status, as Litestar's ``ASGIResponse`` would send them."""

    __slots__ = ("body", "status")

    def __init__(self, status: int, body: bytes) -> None:
        self.status = status
        self.body = body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = self.body
        await send(
            {
                "type": "http.response.start",
                "status": self.status,
                "headers": [_JSON_TYPE, (b"content-length", b"%d" % len(body))],
            }
        )
        await send({"type": "http.response.body", "body": body, "more_body": False})


def _plain_json(handler: HTTPRouteHandler) -> bool:
    """Litestar would answer this route's data with a JSON body, its status, content-type and content-length only."""
    media_type = handler.media_type.value if isinstance(handler.media_type, MediaType) else handler.media_type
    return_type = handler.parsed_fn_signature.return_type
    return (
        media_type == MediaType.JSON.value
        and handler.resolve_response_class() is Response
        and not return_type.is_subclass_of(Response)
        and return_type.annotation is not ASGIApp
        and not is_async_callable(return_type.annotation)
        and not any(layer.after_request for layer in handler.ownership_layers)
        and handler.background is None
        and not handler.resolve_response_cookies()
        and not any(not header.documentation_only for header in handler.resolve_response_headers())
        and handler.resolve_return_dto() is None
        and handler.status_code >= 200
        and handler.status_code not in _NO_BODY_STATUSES
    )


def _direct_handler(
    litestar_handler: Callable[..., Any], status: int, encode: Callable[[Any], bytes]
) -> Callable[..., Any]:
    async def handler(data: Any, request: Any, app: Any, **kwargs: Any) -> Any:
        # Litestar's data handler awaits an awaitable and passes bytes and strings through unencoded: those
        # (and anything the encoder refuses, which it answers with its own error) stay Litestar's.
        if isinstance(data, (msgspec.Struct, dict, list)):
            try:
                return JsonAnswer(status, encode(data))
            except (TypeError, ValueError, msgspec.EncodeError):
                pass
        return await litestar_handler(data=data, request=request, app=app, **kwargs)

    return handler


def answer_plain_json_directly(app: Litestar) -> int:
    """Give every plain JSON route of ``app`` the direct handler; the number of routes given it."""
    count = 0
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            if not _plain_json(handler):
                continue
            litestar_handler = handler.get_response_handler()  # built and memoised by Litestar
            encoders = {**(Response.type_encoders or {}), **(handler.resolve_type_encoders() or {})}
            encode = msgspec.json.Encoder(enc_hook=get_serializer(encoders)).encode
            mapping = handler._response_handler_mapping  # Litestar's memo of the handlers it built
            if mapping["default_handler"] is Empty:
                continue
            # A new memo for this app's copy of the handler: Litestar's copies of a function handler share one
            # dict, and another app (a test's bare Litestar, say) keeps its own answers.
            handler._response_handler_mapping = {
                **mapping,
                "default_handler": _direct_handler(litestar_handler, handler.status_code, encode),
            }
            count += 1
    return count
