"""A body nobody reads to its end (over the size limit, refused before the handler) is read before the answer.

Over HTTP/1.1 a server that answers while the client is still sending, then closes, resets the connection
(its socket still holds unread bytes), and the client's kernel drops the answer with it: a 413 for a 4 MB
body arrived as a connection reset. These tests serve the sample app with granian, as services are served.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from granian.constants import Interfaces
from granian.server.embed import Server
from litestar.testing import AsyncTestClient

from tablium_kit.middleware import drain_body
from tablium_kit.service_processes import free_port


@pytest.fixture(scope="module")
async def served(sample: AsyncTestClient) -> AsyncIterator[str]:
    """The sample app (started by ``sample``) behind granian on a real socket, in this event loop."""
    port = free_port()
    server = Server(sample.app, port=port, interface=Interfaces.ASGINL, log_enabled=False)
    task = asyncio.create_task(server.serve())
    url = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(base_url=url) as client:
        for _ in range(200):
            with contextlib.suppress(httpx.TransportError):
                await client.get("/health")
                break
            await asyncio.sleep(0.05)
    yield url
    server.stop()
    await task


async def _chunks(total: int, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    for _ in range(total // size):
        yield b" " * size


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
@pytest.mark.parametrize("path", ["/api/v1/sample/seats", "/api/v1/nowhere"], ids=["413", "404"])
async def test_a_big_body_gets_its_answer_not_a_reset_and_the_client_goes_on(
    served: str, path: str, chunked: bool
) -> None:
    async with httpx.AsyncClient(base_url=served, timeout=30) as http:
        for size in (1_000_000, 4_000_000, 4_000_000):
            content = _chunks(size) if chunked else b"[]" * (size // 2)
            answer = await http.post(path, content=content, headers={"Content-Type": "application/json"})
            assert answer.status_code == (413 if path.endswith("seats") else 404), answer.text
            assert answer.headers["content-type"].startswith("application/problem+json")
            after = await http.get("/api/v1/sample/public")
            assert after.status_code == 200, after.text


class BodyParts:
    """A request body as the ASGI server hands it over: ``count`` parts (None: without end)."""

    def __init__(self, count: int | None, size: int = 1024 * 1024) -> None:
        self.count, self.size, self.read = count, size, 0
        self.started: list[tuple[int, int, list[tuple[bytes, bytes]]]] = []  # status, parts read, headers

    async def receive(self) -> dict[str, Any]:
        self.read += 1
        return {
            "type": "http.request",
            "body": b"x" * self.size,
            "more_body": self.count is None or self.read < self.count,
        }

    async def send(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self.started.append((message["status"], self.read, message["headers"]))

    async def post(
        self, app: Any, path: str, *headers: tuple[bytes, bytes]
    ) -> tuple[int, int, list[tuple[bytes, bytes]]]:
        scope = {
            "type": "http",
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "root_path": "",
            "query_string": b"",
            "headers": [(b"host", b"sample.test"), (b"content-type", b"application/json"), *headers],
            "client": ("127.0.0.1", 50000),
            "server": ("sample.test", 80),
            "state": {},
        }
        await app(scope, self.receive, self.send)
        [started] = self.started
        return started


@pytest.mark.parametrize("framing", [(b"content-length", b"4194304"), (b"transfer-encoding", b"chunked")])
async def test_the_rest_of_the_body_is_read_before_the_answer_starts(
    sample: AsyncTestClient, framing: tuple[bytes, bytes]
) -> None:
    status, read, headers = await BodyParts(4).post(sample.app, "/api/v1/sample/seats", framing)
    assert (status, read) == (413, 4)
    assert (b"connection", b"close") not in headers
    status, read, _ = await BodyParts(4).post(sample.app, "/api/v1/nowhere", framing)
    assert (status, read) == (404, 4)


async def test_a_body_without_end_is_read_up_to_a_bound_then_the_connection_closes(sample: AsyncTestClient) -> None:
    status, read, headers = await BodyParts(None).post(
        sample.app, "/api/v1/sample/seats", (b"content-length", b"99999999999")
    )
    assert status == 413
    assert 16 <= read <= 18  # DRAIN_MAX_BYTES (16 MiB) and a little
    assert (b"connection", b"close") in headers


async def test_a_client_waiting_for_100_continue_is_not_asked_for_its_body(sample: AsyncTestClient) -> None:
    status, read, _ = await BodyParts(4).post(
        sample.app, "/api/v1/sample/seats", (b"content-length", b"4194304"), (b"expect", b"100-continue")
    )
    assert (status, read) == (413, 0)


async def test_a_stalled_body_is_given_up_on() -> None:
    async def stalled() -> dict[str, Any]:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    assert not await drain_body(stalled, max_s=0.01)  # type: ignore[arg-type]


async def test_a_body_that_ended_is_not_read_again(sample: AsyncTestClient) -> None:
    """A body read whole (one part, not JSON: a 400): the server is not asked for more (it would wait for
    the client to leave)."""
    status, read, _ = await BodyParts(1, size=20).post(sample.app, "/api/v1/sample/seats", (b"content-length", b"20"))
    assert (status, read) == (400, 1)
