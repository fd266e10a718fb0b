"""Who the client really is, and which request this is.

Behind the gateway every request comes from the gateway's address. The gateway
appends the client's address to ``X-Forwarded-For``; we believe that header only
from trusted proxies, so rate limits and logs see the real client.
"""

from __future__ import annotations

import ipaddress
import os
from contextvars import ContextVar

from litestar.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID_HEADER = b"x-request-id"
# The id of the request being handled; log lines and outgoing calls carry it.
request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
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


class ClientContextMiddleware:
    """Rewrites ``scope["client"]`` from trusted forwarding headers and tags the request with an id.

    The request id comes from ``X-Request-ID`` (set by the gateway's correlation-id
    plugin) or is generated; it is set in :data:`request_id_var` (the log processors
    read it) and echoed back in the response.
    """

    def __init__(self, app: ASGIApp, trusted_proxies: list[str]) -> None:
        self.app = app
        self.trusted = [ipaddress.ip_network(p, strict=False) for p in trusted_proxies]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        forwarded_for: str | None = None
        request_id: str | None = None
        for name, value in scope["headers"]:
            if name == b"x-forwarded-for":
                forwarded_for = value.decode("latin-1")
            elif name == REQUEST_ID_HEADER:
                request_id = value.decode("latin-1")[:128]
        client = scope.get("client")
        if client and forwarded_for:
            scope["client"] = (real_client(client[0], forwarded_for, self.trusted), client[1])
        request_id = request_id or os.urandom(16).hex()
        token = request_id_var.set(request_id)
        encoded_id = request_id.encode("latin-1")

        async def send_with_request_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((REQUEST_ID_HEADER, encoded_id))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_request_id)
        finally:
            request_id_var.reset(token)
