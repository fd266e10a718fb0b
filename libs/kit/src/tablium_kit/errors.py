"""Every error leaves a service as application/problem+json (RFC 9457).

Services and domain code raise :class:`ProblemError` subclasses (no web framework
needed at the raise site); Litestar's own HTTP errors (validation, 404, 405, 413)
are converted by the problem-details plugin; anything unexpected becomes a bare
500 problem whose details stay in the log, never in the response.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

import structlog
from advanced_alchemy.exceptions import IntegrityError, NotFoundError
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.plugins.problem_details import (
    ProblemDetailsConfig,
    ProblemDetailsException,
    ProblemDetailsPlugin,
)
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
