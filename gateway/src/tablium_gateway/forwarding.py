"""What goes upstream: the request's path, its body and the headers a proxy must drop, replace or add."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Mapping

from tablium_gateway.asgi import Receive, Scope
from tablium_gateway.config import Route, Service
from tablium_gateway.router import normalize_path

HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)
# Set by the gateway itself; a client's own values would be spoofing.
_REPLACED_UPSTREAM = HOP_BY_HOP | {
    b"host",
    b"expect",  # answered by the ASGI server; an upstream 100 Continue would confuse the proxy
    b"x-forwarded-for",
    b"x-forwarded-proto",
    b"x-forwarded-host",
    b"x-forwarded-port",
    b"x-forwarded-path",
    b"x-forwarded-prefix",
    b"x-real-ip",
    b"x-consumer-id",
    b"x-consumer-custom-id",
    b"x-consumer-username",
    b"x-credential-identifier",
    b"x-anonymous-consumer",
}


# An HTTP/1.1 server that answers while the client is still sending its body, then closes, resets the
# connection (the unread bytes in its socket make the kernel send RST), and the client's kernel drops the
# answer with it: a 413 for a 2 MB body arrived as a connection reset. So a refusal first reads and drops
# what is left of the body, up to this much and this long; past that it says "Connection: close".
DRAIN_MAX_BYTES = 16 * 1024 * 1024
DRAIN_MAX_S = 5.0


class BodyTooLarge(Exception):
    def __init__(self, ended: bool) -> None:
        super().__init__("request body too large")
        self.ended = ended  # the body's last part was read: nothing left to drain


def request_path(scope: Scope) -> str | None:
    raw_path: bytes | None = scope.get("raw_path")
    return normalize_path(raw_path.decode("latin-1").split("?", 1)[0] if raw_path else scope["path"])


def upstream_headers(
    scope: Scope,
    route: Route,
    headers: Mapping[str, str],
    path: str,
    extra: list[tuple[bytes, bytes]],
) -> list[tuple[bytes, bytes]]:
    """The client's headers minus hop-by-hop and spoofable ones, plus Kong's X-Forwarded-* and ``extra``."""
    connection_tokens = {t.strip().lower().encode() for t in headers.get("connection", "").split(",") if t.strip()}
    replaced = {name for name, _ in extra}
    out = [
        (k, v)
        for k, v in scope["headers"]
        if k not in _REPLACED_UPSTREAM and k not in connection_tokens and k not in replaced
    ]
    client = scope.get("client")
    client_ip = client[0] if client else "unknown"
    forwarded_for = headers.get("x-forwarded-for")
    host_header = headers.get("host", "")
    server = scope.get("server")
    service = route.service
    out += [
        (b"host", host_header.encode("latin-1") if route.preserve_host else _host_of(service)),
        # Like Kong: the client's X-Forwarded-For is kept and the peer appended to it;
        # X-Real-IP is the peer itself.
        (b"x-forwarded-for", f"{forwarded_for}, {client_ip}".encode() if forwarded_for else client_ip.encode()),
        (b"x-real-ip", client_ip.encode()),
        (b"x-forwarded-proto", scope.get("scheme", "http").encode()),
        (b"x-forwarded-host", host_header.rsplit(":", 1)[0].encode("latin-1") if host_header else b""),
        (b"x-forwarded-port", str(server[1] if server and server[1] else 80).encode()),
        (b"x-forwarded-path", path.encode("latin-1")),
    ]
    out += extra
    return out


def _host_of(service: Service) -> bytes:
    return _host_header(service.scheme, service.host, service.port)


@functools.cache
def _host_header(scheme: str, host: str, port: int) -> bytes:
    """The Host a service is sent, worked out once per service (IDNA encoding is slow; so is hashing the
    whole Service dataclass, hence its address as the key)."""
    default = 443 if scheme == "https" else 80
    return (host if port == default else f"{host}:{port}").encode("idna")


async def read_body(receive: Receive, limit: int) -> bytes:
    """The whole body, refused past ``limit`` bytes whatever Content-Length said."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(ended=not message.get("more_body", False))
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def drain_body(receive: Receive, max_bytes: int = DRAIN_MAX_BYTES, max_s: float = DRAIN_MAX_S) -> bool:
    """Read and drop the rest of a request's body: True when it ended (or the client left) within the bounds."""
    read = 0
    try:
        async with asyncio.timeout(max_s):
            while True:
                message = await receive()
                if message["type"] != "http.request" or not message.get("more_body", False):
                    return True
                read += len(message.get("body", b""))
                if read > max_bytes:
                    return False
    except TimeoutError:
        return False


async def stream_body(receive: Receive) -> AsyncIterator[bytes]:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        chunk: bytes = message.get("body", b"")
        if chunk:
            yield chunk
        if not message.get("more_body", False):
            return
