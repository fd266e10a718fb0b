"""Responses the gateway makes itself: problem+json refusals and the headers every response carries."""

from __future__ import annotations

import json
from http import HTTPStatus

from tablium_gateway.config import Route

PROBLEM_JSON = (b"content-type", b"application/problem+json")
# The gateway's bodies are always JSON; a browser must never sniff one into something else.
NOSNIFF = (b"x-content-type-options", b"nosniff")
VIA = (b"via", b"1.1 tablium-dev-gateway")
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


def problem(status: int, detail: str) -> bytes:
    """An RFC 9457 body shaped like the services' (type, title, status, detail); never an upstream's address."""
    title = _TITLES.get(status) or HTTPStatus(status).phrase.capitalize()
    slug = title.lower().replace(" ", "-")
    body = {"type": f"urn:tablium:problem:{slug}", "title": title, "status": status, "detail": detail}
    return json.dumps(body).encode()


def missing_added_headers(route: Route | None, headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """response-transformer's add.headers that the response doesn't have yet (Kong's add never overwrites)."""
    transformer = route.plugins.response_transformer if route is not None else None
    if transformer is None:
        return []
    present = {name.lower() for name, _ in headers}
    return [(name, value) for name, value in transformer.add_headers if name not in present]
