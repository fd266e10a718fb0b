"""A TCP proxy that can be cut: a real outage of a dependency (Postgres, say) for tests.

Postgres, RabbitMQ and Redis are shared by everyone running tests on a machine, so no test may stop
them. Point the service under test at the proxy instead and cut it: open connections are reset and
new ones refused, exactly what a service sees when its database goes away; :meth:`TcpProxy.restore`
brings it back on the same port::

    proxy = TcpProxy("127.0.0.1", 5432)
    url = f"postgresql+asyncpg://postgres@127.0.0.1:{proxy.port}/mydb"
    ...
    proxy.cut()
    ...
    proxy.restore()

It runs on a thread and event loop of its own, so it keeps forwarding whatever the caller's loop is
doing (Litestar's test client runs the application on another thread and blocks the caller's loop
while it waits for an answer).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine
from typing import Any


class TcpProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._streams: set[asyncio.StreamWriter] = set()
        self._pipes: set[asyncio.Task[None]] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="tcp-proxy", daemon=True)
        self._thread.start()
        self.restore()

    def cut(self) -> None:
        """Reset every open connection and refuse new ones."""
        self._run(self._cut())

    def restore(self) -> None:
        """Accept connections again (on a free port the first time, on :attr:`port` after a cut)."""
        self._run(self._listen())

    def close(self) -> None:
        self.cut()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    def _run(self, step: Coroutine[Any, Any, None]) -> None:
        asyncio.run_coroutine_threadsafe(step, self._loop).result(timeout=10)

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _cut(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for stream in list(self._streams):
            stream.transport.abort()
        self._streams.clear()
        await asyncio.gather(*self._pipes, return_exceptions=True)

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            client_writer.transport.abort()
            return
        self._streams.update((client_writer, upstream_writer))
        for reader, writer in ((client_reader, upstream_writer), (upstream_reader, client_writer)):
            pipe = asyncio.create_task(self._pipe(reader, writer))
            self._pipes.add(pipe)
            pipe.add_done_callback(self._pipes.discard)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except OSError:
            pass  # the other side went away (or the proxy was cut)
        finally:
            self._streams.discard(writer)
            with contextlib.suppress(OSError):
                writer.close()
