"""Calls to another service's ``/internal`` API: service identity, idempotency, trace context.

Commands that need an answer now (a buy-in hold, a registration) go over HTTP on
the internal network. Every call carries this service's identity token, an
``Idempotency-Key`` (so a retry after a timeout cannot act twice) and the W3C
trace context. Connection failures and 502/503/504 are retried with the same key.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import structlog
from opentelemetry import propagate

from tablium_kit.auth import ServiceTokens
from tablium_kit.errors import ProblemError

RETRYABLE_STATUS = frozenset({502, 503, 504})
log = structlog.get_logger("tablium.internal")


class UpstreamError(ProblemError):
    """The other service answered with an error.

    Its problem details are kept for the caller (``problem``, ``upstream_detail``: to map a refusal the
    caller understands) and for the log, but never shown to the client: they are written for a service,
    and may name its internal routes ("Validation failed for POST /internal/v1/transfers").
    """

    status_code = 502
    title = "Upstream service error"
    slug = "upstream-error"

    def __init__(self, service: str, status: int, problem: dict[str, Any]) -> None:
        super().__init__(
            f"the {service} service could not complete the request",
            extra={"upstream": service, "upstream_status": status},
        )
        self.service = service
        self.status = status
        self.problem = problem
        self.upstream_detail = str(problem.get("detail") or problem.get("title") or f"{service} answered {status}")


class InternalClient:
    """One per called service, shared for the caller's lifetime (connection pooling).

    ``service`` is the callee's name: the caller's identity tokens are addressed to it (``aud``).
    """

    def __init__(
        self,
        service: str,
        base_url: str,
        tokens: ServiceTokens,
        *,
        timeout_s: float = 5.0,
        attempts: int = 3,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.service = service
        self._tokens = tokens
        self._attempts = attempts
        self._client = httpx.AsyncClient(base_url=base_url, timeout=timeout_s, transport=transport)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def request(self, method: str, path: str, *, json: Any = None, idempotency_key: str | None = None) -> Any:
        """Send, retrying transient failures with the same idempotency key; return the decoded body."""
        headers = {"Authorization": f"Bearer {self._tokens.token(self.service)}"}
        if method != "GET":
            headers["Idempotency-Key"] = idempotency_key or str(uuid.uuid4())
        propagate.inject(headers)
        delay = 0.1
        for attempt in range(1, self._attempts + 1):
            try:
                response = await self._client.request(method, path, json=json, headers=headers)
            except httpx.TransportError:
                if attempt == self._attempts:
                    raise
            else:
                if response.status_code not in RETRYABLE_STATUS or attempt == self._attempts:
                    break
            await asyncio.sleep(delay)
            delay *= 4
        if response.status_code >= 400:
            try:
                problem = response.json()
            except ValueError:
                problem = {"detail": response.text[:200]}
            error = UpstreamError(self.service, response.status_code, problem if isinstance(problem, dict) else {})
            log.warning(
                "upstream error",
                upstream=self.service,
                method=method,
                path=path,
                status=response.status_code,
                detail=error.upstream_detail,
            )
            raise error
        return response.json() if response.content else None
