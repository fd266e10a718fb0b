"""Who the client really is, and which request this is.

The kit's layer opens a :class:`RequestContext` for every request, in one context
variable: the request id (log lines and outgoing calls carry it), the raw
``Authorization`` header, and the caller once authentication ran.

Behind the gateway every request comes from the gateway's address. The gateway
appends the client's address to ``X-Forwarded-For``; we believe that header only
from trusted proxies, so rate limits and logs see the real client.
"""

from __future__ import annotations

import ipaddress
from contextvars import ContextVar
from typing import Any
from urllib.parse import parse_qsl, urlencode

REQUEST_ID_HEADER = b"x-request-id"


class RequestContext:
    """The request being handled, as the kit knows it (one object, so one context variable per request)."""

    __slots__ = ("authenticated", "authorization", "caller", "query_credentials", "raw_request_id")

    def __init__(
        self, raw_request_id: bytes, authorization: bytes | None, query_credentials: dict[str, str] | None = None
    ) -> None:
        self.raw_request_id = raw_request_id  # as echoed in the response header
        self.authorization = authorization  # the raw header, read once by the layer
        self.authenticated = False
        self.caller: Any = None  # an auth.Principal once authenticated on a secured route
        # Credentials a client could only put in the query string (QUERY_CREDENTIALS), taken out of it.
        self.query_credentials = query_credentials or {}

    @property
    def request_id(self) -> str:
        # Decoded only when something logs it or passes it on.
        return self.raw_request_id.decode("latin-1")


# Query parameters that carry credentials (a browser cannot set headers on a WebSocket): the kit's layer
# takes them out of the query string before anything else reads it (traces, logs, error reports) and keeps
# them in the request context only (``RequestContext.query_credentials``).
QUERY_CREDENTIALS: frozenset[str] = frozenset({"ticket", "rejoin"})


def take_query_credentials(query_string: bytes) -> tuple[bytes, dict[str, str]]:
    """``query_string`` without the parameters of :data:`QUERY_CREDENTIALS`, and those parameters' values."""
    kept: list[tuple[str, str]] = []
    taken: dict[str, str] = {}
    for name, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        if name in QUERY_CREDENTIALS:
            taken.setdefault(name, value)  # the first one counts, as for headers
        else:
            kept.append((name, value))
    return urlencode(kept).encode("latin-1"), taken


request_context: ContextVar[RequestContext | None] = ContextVar("tablium_request", default=None)
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _is_trusted(address: str, trusted: list[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted)


def real_client(peer: str, forwarded_for: str | None, trusted: list[Network]) -> str:
    """The right-most address in the proxy chain that is not one of our proxies."""
    if not forwarded_for or not _is_trusted(peer, trusted):
        return peer
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _is_trusted(hop, trusted):
            return hop
    return hops[0] if hops else peer
