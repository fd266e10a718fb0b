"""Telling a handler's failure apart: a dependency away (the consumer retries in place, the message held) or
the message's own problem (poison: retried with backoff, then dead-lettered)."""

from __future__ import annotations

import httpx

from tablium_kit.errors import transient_failure
from tablium_kit.internal import RETRYABLE_STATUS, UpstreamError


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
