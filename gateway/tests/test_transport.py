"""The pooled HTTP/1.1 transport under the gateway's httpx client."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest

from tablium_gateway.transport import PooledHTTP1Transport, request_head

from .conftest import EchoUpstream

TIMEOUTS = {"timeout": httpx.Timeout(5.0).as_dict()}
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=PooledHTTP1Transport()) as c:
        yield c


async def _serve(handler: Handler) -> tuple[asyncio.Server, str]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    return server, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"


async def _read_head(reader: asyncio.StreamReader) -> None:
    while (await reader.readline()) not in (b"\r\n", b""):
        pass


async def _get(client: httpx.AsyncClient, url: str) -> tuple[int, bytes]:
    response = await client.send(httpx.Request("GET", url, extensions=TIMEOUTS), stream=True)
    body = b"".join([chunk async for chunk in response.aiter_raw()])
    await response.aclose()
    return response.status_code, body


async def test_connections_are_kept_alive_and_reused(client: httpx.AsyncClient, upstream: EchoUpstream) -> None:
    before = upstream.connections
    for _ in range(5):
        assert (await _get(client, upstream.url + "/x"))[0] == 200
    assert upstream.connections - before == 1


async def test_chunked_and_close_delimited_bodies(client: httpx.AsyncClient) -> None:
    async def chunked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
        await writer.drain()
        await _read_head(reader)  # keeps the connection open for a second request
        writer.close()

    async def until_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nall of it")
        await writer.drain()
        writer.close()

    for handler, expected in ((chunked, b"hello world"), (until_close, b"all of it")):
        server, url = await _serve(handler)
        async with server:
            assert await _get(client, url) == (200, expected)


async def test_an_upstream_that_closed_an_idle_connection_is_not_reused(client: httpx.AsyncClient) -> None:
    accepted = 0

    async def one_per_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal accepted
        accepted += 1
        await _read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
        await writer.drain()
        writer.close()  # without saying connection: close

    server, url = await _serve(one_per_connection)
    async with server:
        assert await _get(client, url) == (200, b"ok")
        await asyncio.sleep(0.05)
        assert await _get(client, url) == (200, b"ok")
    assert accepted == 2


async def test_errors_map_to_httpx_exceptions(client: httpx.AsyncClient) -> None:
    with pytest.raises(httpx.ConnectError):
        await _get(client, "http://127.0.0.1:9/x")

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_head(reader)
        writer.close()

    server, url = await _serve(silent)
    async with server:
        with pytest.raises(httpx.RemoteProtocolError):
            await _get(client, url)

    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_head(reader)
        await asyncio.sleep(1)
        writer.close()

    server, url = await _serve(slow)
    async with server:
        request = httpx.Request("GET", url, extensions={"timeout": httpx.Timeout(0.1).as_dict()})
        with pytest.raises(httpx.ReadTimeout):
            await client.send(request)


async def test_request_bodies_are_sent_with_their_framing(client: httpx.AsyncClient, upstream: EchoUpstream) -> None:
    await client.send(httpx.Request("POST", upstream.url + "/x", content=b"abc", extensions=TIMEOUTS))
    assert upstream.last.body == b"abc"

    async def parts() -> AsyncIterator[bytes]:
        yield b"de"
        yield b"f"

    await client.send(httpx.Request("POST", upstream.url + "/x", content=parts(), extensions=TIMEOUTS))
    assert upstream.last.header("transfer-encoding") == "chunked"
    assert upstream.last.body == b"def"


@pytest.mark.parametrize(
    "headers",
    [
        [(b"x-a", b"one\r\nx-b: two")],
        [(b"x-a", b"one\n")],
        [(b"x-a\r", b"one")],
        [(b"x-a", b"1"), (b"x-b", b"2\r")],
    ],
)
def test_a_header_with_a_line_break_is_refused(headers: list[tuple[bytes, bytes]]) -> None:
    with pytest.raises(httpx.LocalProtocolError):
        request_head(b"GET", b"/", headers)


def test_the_request_head() -> None:
    assert request_head(b"GET", b"/a?b=1", [(b"host", b"x"), (b"x-a", b"1")]) == (
        b"GET /a?b=1 HTTP/1.1\r\nhost: x\r\nx-a: 1\r\n\r\n"
    )
    assert request_head(b"GET", b"/", []) == b"GET / HTTP/1.1\r\n\r\n"


async def test_requests_in_flight_are_capped_per_upstream() -> None:
    """``max_connections`` bounds each upstream on its own: a slow service's queue waits in the transport,
    without holding back another service."""
    in_flight = most = 0
    release = asyncio.Event()

    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal in_flight, most
        while True:
            await _read_head(reader)
            if reader.at_eof():
                break
            in_flight += 1
            most = max(most, in_flight)
            await release.wait()
            in_flight -= 1
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
            await writer.drain()
        writer.close()

    async def quick(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
        await writer.drain()
        writer.close()

    slow_server, slow_url = await _serve(slow)
    quick_server, quick_url = await _serve(quick)
    async with (
        slow_server,
        quick_server,
        httpx.AsyncClient(transport=PooledHTTP1Transport(max_connections=2)) as client,
    ):
        waiting = [asyncio.create_task(_get(client, slow_url)) for _ in range(5)]
        await asyncio.sleep(0.2)
        assert most == 2  # the three others wait for a connection in the transport
        assert await asyncio.wait_for(_get(client, quick_url), 5) == (200, b"ok")  # another upstream: not held
        release.set()
        assert await asyncio.gather(*waiting) == [(200, b"ok")] * 5
        assert most == 2
