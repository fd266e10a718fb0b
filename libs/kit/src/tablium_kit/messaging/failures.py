"""Telling a handler's failure apart: a dependency away (the consumer retries in place, the message held) or
the message's own problem (poison: retried with backoff, then dead-lettered)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import httpx

from tablium_kit.errors import transient_failure
from tablium_kit.internal import RETRYABLE_STATUS, UpstreamError
from tablium_kit.messaging.metrics import INFRA_RETRIES

log = logging.getLogger(__name__)
T = TypeVar("T")


def infrastructure_failure(exc: BaseException) -> bool:
    """Whether ``exc`` says a dependency is away (retry in place) rather than the message is poison."""
    if transient_failure(exc):
        return True
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, httpx.TransportError):
            return True
        if isinstance(cause, UpstreamError) and cause.status in RETRYABLE_STATUS:
            return True
        cause = cause.__cause__ or cause.__context__
    return False


async def through_outages(
    run: Callable[[], Awaitable[T]], what: str, *, service: str, stopping: Callable[[], bool], max_backoff: float
) -> T | None:
    """``run()`` until it succeeds or fails on its own; infrastructure failures are waited out, backing off up to
    ``max_backoff`` (None: ``stopping()`` became true meanwhile)."""
    delay = 0.1
    while True:
        try:
            return await run()
        except Exception as exc:
            if not infrastructure_failure(exc):
                raise
            if stopping():
                return None
            INFRA_RETRIES.labels(service).inc()
            log.warning("handling %s met an infrastructure failure (%r); retrying in %.1fs", what, exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_backoff)
