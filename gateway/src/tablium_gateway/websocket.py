"""The WebSocket half of the proxy: open the upstream socket, then relay frames both ways."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import websockets
from websockets.typing import Subprotocol

from tablium_gateway.asgi import Receive, Send
from tablium_gateway.config import Service

_MAX_MESSAGE = 1 << 20


async def connect_upstream(
    service: Service, url: str, headers: list[tuple[str, str]], subprotocols: list[str]
) -> Any | int:
    """The upstream socket, or the close code to give the client when it can't be opened
    (1008 when the service refused the handshake, 1011 when it failed or can't be reached)."""
    try:
        return await websockets.connect(
            url,
            additional_headers=headers,
            subprotocols=[Subprotocol(p) for p in subprotocols] or None,
            open_timeout=service.connect_timeout_s,
            max_size=_MAX_MESSAGE,
            compression=None,
        )
    except websockets.InvalidStatus as exc:
        return 1008 if exc.response.status_code < 500 else 1011
    except (OSError, TimeoutError, websockets.WebSocketException):
        return 1011


async def relay(peer: Any, receive: Receive, send: Send) -> None:
    """Frames both ways until either side closes; the other side is then closed with the same code."""

    async def downstream() -> None:
        try:
            async for frame in peer:
                if isinstance(frame, str):
                    await send({"type": "websocket.send", "text": frame})
                else:
                    await send({"type": "websocket.send", "bytes": frame})
        except websockets.ConnectionClosed:
            pass
        code = peer.close_code or 1000
        with contextlib.suppress(Exception):  # the client may be gone already
            await send({"type": "websocket.close", "code": code if code != 1005 else 1000})

    async def upstream() -> None:
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                await peer.close(code=message.get("code", 1000) if message.get("code", 1000) != 1005 else 1000)
                return
            if message["type"] == "websocket.receive":
                data = message.get("text")
                try:
                    await peer.send(data if data is not None else message.get("bytes") or b"")
                except websockets.ConnectionClosed:
                    return

    tasks = [asyncio.create_task(downstream()), asyncio.create_task(upstream())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await peer.close()
