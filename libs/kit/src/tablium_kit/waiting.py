"""What tests against running processes share: waiting for another process's state and reading its database.

The state a test waits on is in other processes (a consumer, a relay, a lobby's table) with no event to
await, so it polls. ``within_s`` only bounds a hang: the test asserts what happened, not how fast.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine


async def eventually(
    check: Callable[[], Awaitable[object]], what: str = "the condition", *, within_s: float = 120, every_s: float = 0.1
) -> None:
    """Polls ``check`` until it answers true. A string answer is the reason it is not yet (kept for the
    failure message), as is any false answer."""
    last: object = None
    try:
        async with asyncio.timeout(within_s):
            while True:
                last = await check()
                if last is True or (last and not isinstance(last, str)):
                    return
                await asyncio.sleep(every_s)
    except TimeoutError:
        raise AssertionError(f"timed out after {within_s} s waiting for {what} (last answer: {last!r})") from None


async def rows(database: str | AsyncEngine, sql: str, **params: Any) -> list[Any]:
    """Every row ``sql`` returns from a database given by URL (an engine made and disposed) or by engine."""
    engine = create_async_engine(database) if isinstance(database, str) else database
    try:
        async with engine.connect() as connection:
            return list(await connection.execute(text(sql), params))
    finally:
        if isinstance(database, str):
            await engine.dispose()
