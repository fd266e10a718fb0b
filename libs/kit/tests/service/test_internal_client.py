"""Service-to-service calls carry an identity token and surface the callee's problems."""

from __future__ import annotations

import httpx
import pytest
from litestar.testing import AsyncTestClient

from tablium_kit.auth import ServiceTokens
from tablium_kit.internal import InternalClient, UpstreamError


async def test_internal_call_is_authenticated_as_the_calling_service(sample: AsyncTestClient) -> None:
    tokens = ServiceTokens.development("wallet")
    client = InternalClient("sample", "http://sample", tokens, transport=httpx.ASGITransport(app=sample.app))
    try:
        assert await client.request("GET", "/internal/sample/who") == {"caller": "service:wallet"}
    finally:
        await client.aclose()


async def test_callee_problem_becomes_an_upstream_error(sample: AsyncTestClient) -> None:
    tokens = ServiceTokens.development("lobby")  # not allowed there
    client = InternalClient("sample", "http://sample", tokens, transport=httpx.ASGITransport(app=sample.app))
    try:
        with pytest.raises(UpstreamError) as error:
            await client.request("GET", "/internal/sample/who")
        assert error.value.status == 403
        assert error.value.problem["detail"] == "this service may not call this route"
    finally:
        await client.aclose()


async def test_unreachable_service_raises_after_retries() -> None:
    tokens = ServiceTokens.development("event")
    client = InternalClient("wallet", "http://127.0.0.1:9", tokens, attempts=2)
    try:
        with pytest.raises(httpx.TransportError):
            await client.request("POST", "/internal/v1/transfers", json={})
    finally:
        await client.aclose()


async def test_an_upstream_error_shown_to_a_client_names_no_internal_route() -> None:
    """Issue 10, item 3: a 502 answered "Validation failed for POST /internal/v1/transfers" — the
    callee's detail, written for a service. The caller keeps it; the client sees only who failed."""
    problem = {"status": 400, "detail": "Validation failed for POST /internal/v1/transfers"}
    error = UpstreamError("wallet", 400, problem)
    assert error.upstream_detail == problem["detail"]
    assert error.problem == problem
    assert "/internal" not in error.detail
    assert not any("/internal" in str(value) for value in error.extra.values())
    assert (error.status_code, error.extra) == (502, {"upstream": "wallet", "upstream_status": 400})
