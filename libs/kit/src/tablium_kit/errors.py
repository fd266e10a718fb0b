"""Every error leaves a service as application/problem+json (RFC 9457).

Services and domain code raise :class:`ProblemError` subclasses (no web framework
needed at the raise site); Litestar's own HTTP errors (validation, 404, 405, 413)
are converted by the problem-details plugin; anything unexpected becomes a bare
500 problem whose details stay in the log, never in the response.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, ClassVar

import asyncpg
import httpx
import sqlalchemy.exc
import structlog
from advanced_alchemy.exceptions import IntegrityError, NotFoundError
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.plugins.problem_details import (
    ProblemDetailsConfig,
    ProblemDetailsException,
    ProblemDetailsPlugin,
)
from litestar.types import ExceptionHandlersMap
from sqlalchemy.exc import IntegrityError as DatabaseIntegrityError

PROBLEM_JSON = "application/problem+json"
log = structlog.get_logger("tablium.errors")


class ProblemError(Exception):
    """An error a client can act on. ``title`` is fixed per class; ``detail`` says what happened."""

    status_code: ClassVar[int] = 400
    title: ClassVar[str] = "Bad request"
    slug: ClassVar[str] = "bad-request"

    def __init__(self, detail: str, *, extra: dict[str, Any] | None = None, headers: dict[str, str] | None = None):
        super().__init__(detail)
        self.detail = detail
        self.extra = extra or {}
        self.headers = headers or {}


class InvalidInput(ProblemError):
    status_code = 422
    title = "Invalid input"
    slug = "invalid-input"


class Unauthorized(ProblemError):
    status_code = 401
    title = "Unauthorized"
    slug = "unauthorized"


class Forbidden(ProblemError):
    status_code = 403
    title = "Forbidden"
    slug = "forbidden"


class NotFound(ProblemError):
    status_code = 404
    title = "Not found"
    slug = "not-found"


class Conflict(ProblemError):
    status_code = 409
    title = "Conflict"
    slug = "conflict"


class TooManyRequests(ProblemError):
    status_code = 429
    title = "Too many requests"
    slug = "too-many-requests"

    def __init__(self, detail: str, *, retry_after_s: int) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after_s)})


def _type_uri(slug: str) -> str:
    return f"urn:tablium:problem:{slug}"


def _from_problem_error(exc: ProblemError) -> ProblemDetailsException:
    return ProblemDetailsException(
        status_code=exc.status_code,
        title=exc.title,
        detail=exc.detail,
        type_=_type_uri(exc.slug),
        extra=exc.extra or None,
        headers=exc.headers or None,
    )


def problem_response(exc: ProblemError, request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    """The response the problem-details plugin gives ``exc``, for code that answers before any handler runs."""
    return _from_problem_error(exc).to_response(request)


def _from_http_exception(exc: HTTPException) -> ProblemDetailsException:
    extra: dict[str, Any] | None = None
    detail = exc.detail
    if isinstance(exc, ValidationException):
        # Litestar puts the per-field messages in ``extra``; keep them under one key.
        extra = {"errors": exc.extra} if exc.extra else None
    elif isinstance(exc.extra, dict):
        extra = exc.extra
    title = _STATUS_TITLES.get(exc.status_code, "Error")
    return ProblemDetailsException(
        status_code=exc.status_code,
        title=title,
        detail=detail,
        type_=_type_uri(title.lower().replace(" ", "-")),
        extra=extra,
        headers=exc.headers,
    )


_STATUS_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Request too large",
    415: "Unsupported media type",
    422: "Invalid input",
    429: "Too many requests",
    500: "Internal server error",
    503: "Service unavailable",
}


def _from_repository_not_found(exc: NotFoundError) -> ProblemDetailsException:
    return _from_problem_error(NotFound(exc.detail or "not found"))


CONFLICT_DETAIL = "the change conflicts with existing data"


def _from_integrity_error(exc: IntegrityError | DatabaseIntegrityError) -> ProblemDetailsException:
    # Races past a service's own checks (two concurrent inserts of one unique name) land here:
    # advanced-alchemy's repositories raise their own class, a session flush SQLAlchemy's.
    log.warning("integrity error answered 409", error=str(getattr(exc, "orig", exc)))
    return _from_problem_error(Conflict(CONFLICT_DETAIL))


def problem_body(status: int, detail: str) -> bytes:
    """A problem+json body for code answering outside Litestar (the kit's layer), as the plugin would write it."""
    title = _STATUS_TITLES.get(status, "Error")
    problem = {"type": _type_uri(title.lower().replace(" ", "-")), "title": title, "status": status, "detail": detail}
    return json.dumps(problem).encode()


INTERNAL_ERROR: dict[str, Any] = {"type": _type_uri("internal-error"), "title": "Internal server error", "status": 500}


def internal_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    """The last resort: log everything, tell the client nothing it could misuse."""
    log.exception("unhandled error", path=request.url.path, method=request.method, exc_info=exc)
    return Response(
        INTERNAL_ERROR,
        status_code=500,
        media_type=PROBLEM_JSON,
    )


def problem_details_plugin() -> ProblemDetailsPlugin:
    return ProblemDetailsPlugin(
        ProblemDetailsConfig(
            enable_for_all_http_exceptions=False,
            exception_to_problem_detail_map={
                ProblemError: _from_problem_error,
                HTTPException: _from_http_exception,
                NotFoundError: _from_repository_not_found,
                IntegrityError: _from_integrity_error,
                DatabaseIntegrityError: _from_integrity_error,
            },
        )
    )


# -- Transient failures: 503 and Retry-After, never a refusal ---------------------------------------------
#
# A database that is down, restarting, out of connections or unreachable, a pool that timed out, or a
# serialization failure or deadlock that outlived its retries says nothing about the request: the same
# request may succeed in a moment. Answering 409 or 422 would tell a client to give up; a 500 would
# page someone for what is an outage. Services get 503 with Retry-After for all of them.

RETRY_AFTER_S = 1
# SQLSTATEs of failures that pass: connection exceptions (class 08), operator intervention (admin or
# crash shutdown, cannot connect now), too many connections; serialization failure, deadlock.
_UNAVAILABLE_STATES = frozenset({"57P01", "57P02", "57P03", "53300"})
_CONTENTION_STATES = frozenset({"40001", "40P01"})


class ServiceUnavailable(ProblemError):
    status_code = 503
    title = "Service unavailable"
    slug = "service-unavailable"

    def __init__(self, detail: str, *, retry_after_s: int = RETRY_AFTER_S) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after_s)})


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc``, the driver error SQLAlchemy wrapped, and their causes and contexts, each once."""
    seen: set[int] = set()
    pending = [exc]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        for linked in (getattr(current, "orig", None), current.__cause__, current.__context__):
            if isinstance(linked, BaseException):
                pending.append(linked)


def _sqlstate(exc: BaseException) -> str:
    state = getattr(exc, "sqlstate", None) or getattr(exc, "pgcode", None)
    return state if isinstance(state, str) else ""


def database_unavailable(exc: BaseException) -> bool:
    """The database could not be reached or the connection was lost (refused, reset, closed, shut down,
    out of connections), or the pool timed out waiting for one."""
    for cause in _causes(exc):
        if isinstance(cause, sqlalchemy.exc.DBAPIError) and cause.connection_invalidated:
            return True
        if isinstance(cause, sqlalchemy.exc.TimeoutError | ConnectionError | TimeoutError):
            return True
        state = _sqlstate(cause)
        if state.startswith("08") or state in _UNAVAILABLE_STATES:
            return True
    return False


def transient_failure(exc: BaseException) -> bool:
    """Whether the same request may well succeed shortly: the database is unavailable, or the request lost
    a serialization conflict or a deadlock (after whatever retries the service made)."""
    return database_unavailable(exc) or any(_sqlstate(cause) in _CONTENTION_STATES for cause in _causes(exc))


def transient_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    """503 with Retry-After for a transient failure; anything else these types cover is a 500."""
    if not transient_failure(exc):
        return internal_error_handler(request, exc)
    log.warning("transient failure answered 503", path=request.url.path, error=repr(exc))
    return problem_response(ServiceUnavailable("a dependency is unavailable; try again shortly"), request)


def upstream_unreachable_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    """Another service could not be reached at all (``InternalClient`` gave up retrying: refused, reset,
    timed out): an outage of a dependency, as a database's is, so 503 with Retry-After, not a 500."""
    log.warning("upstream service unreachable, answered 503", path=request.url.path, error=repr(exc))
    return problem_response(ServiceUnavailable("a service this one needs is unreachable; try again shortly"), request)


# The exception types a transient failure arrives as: SQLAlchemy's (the driver's wrapped), the pool's
# timeout, asyncpg's own (raised while connecting, outside SQLAlchemy's translation), the OS's, and
# another service's that did not answer (the internal client's httpx transport errors).
TRANSIENT_ERROR_HANDLERS: ExceptionHandlersMap = {
    httpx.TransportError: upstream_unreachable_handler,
    sqlalchemy.exc.DBAPIError: transient_error_handler,
    sqlalchemy.exc.TimeoutError: transient_error_handler,
    asyncpg.PostgresError: transient_error_handler,
    asyncpg.InterfaceError: transient_error_handler,
    ConnectionError: transient_error_handler,
    TimeoutError: transient_error_handler,
}
