"""A pooled HTTP/1.1 transport for ``httpx.AsyncClient``, built on asyncio streams and
httptools (llhttp).

httpx's default transport (httpcore over anyio) measured ~850 requests/s for one
caller on loopback and got slower as callers were added (its pool does work per
waiting request); a gateway sits on that path for every request. This transport keeps
the httpx API the gateway uses (``Request``, ``send(stream=True)``, ``aiter_raw``,
timeouts from ``request.extensions``) and does only what a reverse proxy needs:
plain HTTP/1.1 to upstreams, keep-alive reuse, bounded concurrency.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections import deque
from collections.abc import AsyncIterator, Iterable, Mapping

import httptools
import httpx

_READ_SIZE = 64 * 1024


def request_head(method: bytes, target: bytes, headers: Iterable[tuple[bytes, bytes]]) -> bytes:
    """An HTTP/1.1 request line and headers; a header with a line break is refused (request smuggling)."""
    lines = [b"%s: %s" % header for header in headers]
    block = b"\r\n".join(lines)
    # The headers' bytes hold no CR or LF iff the block has only the separators put in it: two scans in C
    # rather than four per header in Python.
    separators = max(len(lines) - 1, 0)
    if block.count(b"\r") != separators or block.count(b"\n") != separators:
        raise httpx.LocalProtocolError("header with a line break")
    return b"%s %s HTTP/1.1\r\n%s%s\r\n" % (method, target, block, b"\r\n" if lines else b"")


class _Parsed:
    """httptools callbacks: the response head, then body chunks as they arrive.

    One per connection, reset for each response: the parser holds the callbacks, so the two form a reference
    cycle, which only the garbage collector frees. Made per request, that was a cycle a request, hence a gen-0
    collection every ~50 requests and, now and then, a full collection of tens of ms: the gateway's p99.
    llhttp parses a keep-alive connection's responses one after another; a connection is reused only after a
    response that ended cleanly, so the parser starts each one at a message boundary.
    """

    __slots__ = ("chunks", "complete", "headers", "headers_done", "keep_alive", "parser")

    def __init__(self) -> None:
        self.headers: list[tuple[bytes, bytes]] = []
        self.headers_done = False
        self.complete = False
        self.keep_alive = False
        self.chunks: deque[bytes] = deque()
        self.parser = httptools.HttpResponseParser(self)

    def reset(self) -> None:
        self.headers = []  # a new list: the previous response's headers may still be in use
        self.headers_done = False
        self.complete = False
        self.keep_alive = False
        self.chunks.clear()

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.headers_done = True

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        self.complete = True
        # llhttp answers this only until the message is done, so ask it now.
        self.keep_alive = self.parser.should_keep_alive()


class _Connection:
    __slots__ = ("idle_since", "parsed", "reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.idle_since = 0.0
        self.parsed = _Parsed()

    def usable(self, now: float, keepalive_expiry: float) -> bool:
        # A peer that closed an idle connection has fed EOF to the reader by now.
        return not self.reader.at_eof() and not self.writer.is_closing() and now - self.idle_since < keepalive_expiry

    def close(self) -> None:
        self.writer.close()


class PooledHTTP1Transport(httpx.AsyncBaseTransport):
    def __init__(
        self, *, max_connections: int = 1000, max_keepalive: int = 1000, keepalive_expiry: float = 30.0
    ) -> None:
        """``max_connections``: requests in flight to one upstream (host and port) at a time; the others wait
        here for a connection (a pool timeout bounds the wait)."""
        self._max_connections = max_connections
        self._slots: dict[tuple[str, int], asyncio.Semaphore] = {}
        self._max_keepalive = max_keepalive
        self._keepalive_expiry = keepalive_expiry
        self._idle: dict[tuple[str, int], deque[_Connection]] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if url.scheme != "http":
            raise httpx.UnsupportedProtocol(f"the dev gateway speaks plain http to upstreams, not {url.scheme}")
        timeout: Mapping[str, float | None] = request.extensions.get("timeout", {})
        stream = request.stream
        content: bytes | AsyncIterator[bytes]
        chunked = False
        if isinstance(stream, httpx.ByteStream):  # httpx has read it: request.content is set
            content = request.content
        else:
            content = stream  # type: ignore[assignment]
            chunked = any(
                name.lower() == b"transfer-encoding" and value.lower() == b"chunked"
                for name, value in request.headers.raw
            )
        head = request_head(request.method.encode("ascii"), url.raw_path, request.headers.raw)
        status, headers, body = await self.exchange(
            url.host, url.port or 80, head, content, chunked=chunked, head_only=request.method == "HEAD",
            timeouts=timeout, request=request,
        )  # fmt: skip
        return httpx.Response(status, headers=headers, stream=body, extensions={"http_version": b"HTTP/1.1"})

    async def exchange(
        self,
        host: str,
        port: int,
        head: bytes,
        content: bytes | AsyncIterator[bytes],
        *,
        chunked: bool = False,
        head_only: bool = False,
        timeouts: Mapping[str, float | None],
        request: httpx.Request | None = None,
    ) -> tuple[int, list[tuple[bytes, bytes]], UpstreamBody]:
        """Send ``head`` (request line and headers, from :func:`request_head`) and ``content``; answer the
        status, the raw headers and the body (iterate it, then ``aclose`` it to give the connection back).

        The gateway's hot path: no ``httpx.Request``/``Response`` objects (building them cost more than the
        rest of a proxied request, ADR 0004), and a timer only where something may wait: the pool when every
        slot is taken, the write when the socket didn't take it all, and the read.
        """
        key = (host, port)
        slots = self._slots.get(key)
        if slots is None:
            slots = self._slots[key] = asyncio.Semaphore(self._max_connections)
        if slots.locked():
            try:
                async with asyncio.timeout(timeouts.get("pool")):
                    await slots.acquire()
            except TimeoutError as exc:
                raise httpx.PoolTimeout("no free upstream connection", request=request) from exc
        else:
            await slots.acquire()  # a free slot: taken at once
        connection: _Connection | None = None
        try:
            connection = self._idle_connection(key) or await self._connect(key, timeouts.get("connect"), request)
            await self._write_request(connection, head, content, chunked, timeouts.get("write"), request)
            parsed = connection.parsed
            parsed.reset()
            parser = parsed.parser
            read_timeout = timeouts.get("read")
            while not parsed.headers_done:
                await self._feed(connection, parser, read_timeout, request, "without sending a response")
        except BaseException:
            if connection is not None:
                connection.close()
            slots.release()
            raise
        body = UpstreamBody(self, key, connection, parser, parsed, request, read_timeout, head_only)
        return parser.get_status_code(), parsed.headers, body

    async def aclose(self) -> None:
        for connections in self._idle.values():
            for connection in connections:
                connection.close()
        self._idle.clear()

    def _idle_connection(self, key: tuple[str, int]) -> _Connection | None:
        connections = self._idle.get(key)
        now = time.monotonic()
        while connections:
            connection = connections.pop()  # most recently used first: least likely to be stale
            if connection.usable(now, self._keepalive_expiry):
                return connection
            connection.close()
        return None

    def _release(self, key: tuple[str, int], connection: _Connection, reusable: bool) -> None:
        self._slots[key].release()
        connections = self._idle.setdefault(key, deque())
        if reusable and len(connections) < self._max_keepalive:
            connection.idle_since = time.monotonic()
            connections.append(connection)
        else:
            connection.close()

    async def _connect(
        self, key: tuple[str, int], connect_s: float | None, request: httpx.Request | None
    ) -> _Connection:
        try:
            async with asyncio.timeout(connect_s):
                reader, writer = await asyncio.open_connection(key[0], key[1], limit=_READ_SIZE)
        except TimeoutError as exc:
            raise httpx.ConnectTimeout(f"connecting to {key[0]}:{key[1]} timed out", request=request) from exc
        except OSError as exc:
            raise httpx.ConnectError(f"connecting to {key[0]}:{key[1]}: {exc}", request=request) from exc
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return _Connection(reader, writer)

    async def _write_request(
        self,
        connection: _Connection,
        head: bytes,
        content: bytes | AsyncIterator[bytes],
        chunked: bool,
        write_s: float | None,
        request: httpx.Request | None,
    ) -> None:
        writer = connection.writer
        try:
            if isinstance(content, bytes):
                writer.write(head + content)  # one write, one segment
                if not writer.transport.get_write_buffer_size():
                    return  # the socket took it all: nothing to wait for
                async with asyncio.timeout(write_s):
                    await writer.drain()
                return
            async with asyncio.timeout(write_s):
                writer.write(head)
                async for chunk in content:
                    if chunked:
                        if chunk:
                            writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    else:
                        writer.write(chunk)
                    await writer.drain()
                if chunked:
                    writer.write(b"0\r\n\r\n")
                await writer.drain()
        except TimeoutError as exc:
            raise httpx.WriteTimeout("writing the request timed out", request=request) from exc
        except OSError as exc:
            raise httpx.WriteError(str(exc), request=request) from exc

    @staticmethod
    async def _feed(
        connection: _Connection,
        parser: httptools.HttpResponseParser,
        read_s: float | None,
        request: httpx.Request | None,
        what: str,
    ) -> bytes:
        reader = connection.reader
        # The read timeout fails the stream itself rather than cancelling the task (asyncio.timeout cost ~3x a
        # bare timer, on every read): a connection that timed out is closed, never reused, so the error it keeps
        # does no harm.
        timer = None if read_s is None else asyncio.get_running_loop().call_later(read_s, _time_out, reader)
        try:
            data = await reader.read(_READ_SIZE)
        except TimeoutError as exc:  # (an OSError: caught first)
            raise httpx.ReadTimeout("reading the response timed out", request=request) from exc
        except OSError as exc:
            raise httpx.ReadError(str(exc), request=request) from exc
        finally:
            if timer is not None:
                timer.cancel()
        if reader.exception() is not None:  # the timer went off as the data came: the stream is spent
            raise httpx.ReadTimeout("reading the response timed out", request=request)
        if data:
            try:
                parser.feed_data(data)
            except httptools.HttpParserError as exc:
                raise httpx.RemoteProtocolError(f"invalid response: {exc}", request=request) from exc
        elif what:
            raise httpx.RemoteProtocolError(f"upstream closed the connection {what}", request=request)
        return data


def _time_out(reader: asyncio.StreamReader) -> None:
    reader.set_exception(TimeoutError())


class UpstreamBody(httpx.AsyncByteStream):
    """An upstream response's body: iterate it, then ``aclose`` it (the connection goes back to the pool)."""

    def __init__(
        self,
        transport: PooledHTTP1Transport,
        key: tuple[str, int],
        connection: _Connection,
        parser: httptools.HttpResponseParser,
        parsed: _Parsed,
        request: httpx.Request | None,
        read_timeout: float | None,
        head_only: bool,
    ) -> None:
        self._transport = transport
        self._key = key
        self._connection = connection
        self._parser = parser
        self._parsed = parsed
        self._request = request
        self._read_timeout = read_timeout
        self._no_body = head_only
        self._closed = False
        headers = {name.lower(): value for name, value in parsed.headers}
        # Neither length nor chunked: the body runs until the upstream closes.
        self._until_close = (
            b"content-length" not in headers and b"chunked" not in headers.get(b"transfer-encoding", b"").lower()
        )
        self._until_close &= parser.get_status_code() not in (204, 304) and parser.get_status_code() >= 200

    async def __aiter__(self) -> AsyncIterator[bytes]:
        parsed = self._parsed
        while True:
            while parsed.chunks:
                yield parsed.chunks.popleft()
            if parsed.complete or self._no_body:
                return
            data = await PooledHTTP1Transport._feed(
                self._connection,
                self._parser,
                self._read_timeout,
                self._request,
                "" if self._until_close else "before the end of the response body",
            )
            if not data:  # a close-delimited body has ended
                parsed.complete = True

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        parsed = self._parsed
        reusable = (
            parsed.complete
            and not self._no_body  # a body sent against the rules would poison the next response
            and not self._until_close
            and parsed.keep_alive
            and not parsed.chunks
        )
        self._transport._release(self._key, self._connection, reusable)

    def __repr__(self) -> str:
        return f"<upstream body {self._key[0]}:{self._key[1]}>"
