"""Every response carries a JSON API's security headers; the OpenAPI document says errors are problem+json."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from tablium_kit.inputs import exact

SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "content-security-policy": "frame-ancestors 'none'",
}


@pytest.mark.parametrize(
    ("method", "path", "status", "kwargs"),
    [
        ("GET", "/api/v1/sample/public", 200, {}),
        ("GET", "/api/v1/sample/me", 401, {}),  # refused by the kit's authentication
        ("POST", "/api/v1/sample/seats", 400, {"json": {"table": 1}}),  # refused by body validation
        ("POST", "/api/v1/sample/seats", 415, {"content": b"{}", "headers": {"Content-Type": "text/plain"}}),
        ("GET", "/api/v1/nowhere", 404, {}),  # matched no route
        ("GET", "/api/v1/sample/echo/a%00", 400, {}),  # refused by the kit's layer itself
        ("GET", "/api/v1/sample/boom", 500, {}),
    ],
)
async def test_every_response_has_the_security_headers(
    sample: AsyncTestClient, method: str, path: str, status: int, kwargs: dict[str, Any]
) -> None:
    response = await sample.request(method, path, **kwargs)
    assert response.status_code == status, response.text
    for name, value in SECURITY_HEADERS.items():
        assert response.headers[name] == value, (name, response.headers)
    assert response.headers["cache-control"] == "no-store"


async def test_an_authenticated_response_is_not_stored(sample: AsyncTestClient, make_token: Callable[..., str]) -> None:
    response = await sample.get("/api/v1/sample/me", headers={"Authorization": f"Bearer {make_token()}"})
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_the_openapi_document_says_errors_are_problem_json(sample: AsyncTestClient) -> None:
    document = (await sample.get("/schema/openapi.json")).json()
    problem = document["components"]["schemas"]["Problem"]
    assert set(problem["required"]) == {"type", "title", "status"}
    seats = document["paths"]["/api/v1/sample/seats"]["post"]["responses"]
    me = document["paths"]["/api/v1/sample/me"]["get"]["responses"]
    for responses, codes in ((seats, {"400", "413", "415", "default"}), (me, {"400", "401", "403", "default"})):
        assert codes <= set(responses), responses
        for code, response in responses.items():
            if not code.startswith("2"):
                assert list(response["content"]) == ["application/problem+json"], (code, response)
                assert response["content"]["application/problem+json"]["schema"] == {
                    "$ref": "#/components/schemas/Problem"
                }


async def test_the_openapi_document_says_text_has_no_control_characters(sample: AsyncTestClient) -> None:
    schemas = (await sample.get("/schema/openapi.json")).json()["components"]["schemas"]
    free_text = schemas["Seat"]["properties"]["table"]["pattern"]
    assert re.search(free_text, "table 7, é")
    for bad in ("a\x00b", "a\nb", "tab\t", "nel\u0085", "end\n"):
        assert not re.search(free_text, bad), bad
    assert schemas["Settings"]["properties"]["country"]["pattern"] == exact("[A-Z]{2}")  # its own is kept


async def test_the_openapi_document_says_which_bodies_refuse_unknown_fields(sample: AsyncTestClient) -> None:
    schemas = (await sample.get("/schema/openapi.json")).json()["components"]["schemas"]
    assert schemas["Seat"]["additionalProperties"] is False  # forbid_unknown_fields=True
    assert schemas["Settings"]["additionalProperties"] is False
    assert "additionalProperties" not in schemas["Problem"]
