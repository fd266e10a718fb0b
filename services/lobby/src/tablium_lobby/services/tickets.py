"""WebSocket tickets: how a browser, which cannot set ``Authorization`` on a WebSocket, opens the table socket.

``POST /api/v1/tables/{id}/ws-ticket`` (authenticated with the player's JWT) returns a random ticket good
for one handshake at that table within ``ws_ticket_ttl_s``. The client passes it as ``?ticket=`` or as a
``Sec-WebSocket-Protocol`` entry ``ticket.<ticket>`` (beside ``tablium.v1``, the one the server selects).
Redis keeps only the ticket's SHA-256 with the caller (TTL = the ticket's life) and ``GETDEL`` redeems it:
a replayed, expired or unknown ticket finds nothing. The kit takes ``ticket`` out of the query string
before anything can trace or log it (``tablium_kit.net.QUERY_CREDENTIALS``).
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from typing import Any

import msgspec
from litestar.connection import ASGIConnection
from redis.asyncio import Redis

from tablium_kit.auth import Principal
from tablium_kit.errors import Unauthorized
from tablium_kit.net import request_context

SUBPROTOCOL = "tablium.v1"
TICKET_SUBPROTOCOL_PREFIX = "ticket."


class _Ticket(msgspec.Struct):
    subject: str
    roles: list[str]
    table_id: str


def _digest(ticket: str) -> str:
    return hashlib.sha256(ticket.encode()).hexdigest()


class WsTickets:
    def __init__(self, redis: Redis, prefix: str, ttl_s: int) -> None:
        self.redis = redis
        self.prefix = prefix
        self.ttl_s = ttl_s

    async def issue(self, principal: Principal, table_id: uuid.UUID) -> str:
        ticket = secrets.token_urlsafe(32)
        value = msgspec.json.encode(_Ticket(principal.subject, sorted(principal.roles), str(table_id)))
        await self.redis.set(f"{self.prefix}:{_digest(ticket)}", value.decode(), ex=self.ttl_s)
        return ticket

    async def redeem(self, ticket: str, table_id: uuid.UUID) -> Principal:
        """The ticket's caller, once: GETDEL makes a second use (a replay, a race) find nothing."""
        if not 16 <= len(ticket) <= 128:
            raise Unauthorized("invalid WebSocket ticket")
        raw = await self.redis.getdel(f"{self.prefix}:{_digest(ticket)}")
        if raw is None:
            raise Unauthorized("WebSocket ticket unknown, already used or expired")
        found = msgspec.json.decode(raw, type=_Ticket)
        if found.table_id != str(table_id):
            raise Unauthorized("this WebSocket ticket is for another table")
        return Principal(subject=found.subject, kind="user", roles=frozenset(found.roles))


def offered_subprotocols(connection: ASGIConnection[Any, Any, Any, Any]) -> list[str]:
    offered: list[str] = []
    for name, value in connection.scope["headers"]:
        if name == b"sec-websocket-protocol":
            offered += [p.strip() for p in value.decode("latin-1").split(",") if p.strip()]
    return offered


async def ticket_caller(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal | None:
    """The caller a WebSocket ticket names (query or subprotocol), or None without one (see ``authenticated_or``)."""
    request = request_context.get()
    ticket = request.query_credentials.get("ticket") if request is not None else None
    if ticket is None:
        ticket = next(
            (
                p.removeprefix(TICKET_SUBPROTOCOL_PREFIX)
                for p in offered_subprotocols(connection)
                if p.startswith(TICKET_SUBPROTOCOL_PREFIX)
            ),
            None,
        )
    if ticket is None:
        return None
    tickets: WsTickets = connection.app.state.ws_tickets
    return await tickets.redeem(ticket, connection.path_params["table_id"])
