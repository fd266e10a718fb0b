"""A validly signed token is still refused when its claims have the wrong types."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from litestar.testing import AsyncTestClient

from tablium_kit.auth import development_service_key

# Only for claims refused by their type: a test that needs a live token reads the clock when it runs
# (under xdist a module can run long after it was imported).
NOW = int(time.time())


@pytest.mark.parametrize(
    "claims",
    [
        {"sub": "p-1"},  # handlers read the subject as a player id (UUID)
        {"sub": 42},
        {"roles": "admin"},  # a string is not a list: it used to become {"a", "d", "m", "i", "n"}
        {"roles": [1, 2]},
        {"exp": str(NOW + 300)},  # the gateway refuses a string exp; so do the services
        {"exp": True},
        {"iat": str(NOW)},
        {"jti": 7},
        {"typ": ["access"]},
    ],
)
async def test_claims_of_the_wrong_type_are_refused(
    sample: AsyncTestClient, make_token: Callable[..., str], claims: dict[str, Any]
) -> None:
    response = await sample.get("/api/v1/sample/me", headers={"Authorization": f"Bearer {make_token(**claims)}"})
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/problem+json"


async def test_a_well_typed_token_is_accepted(sample: AsyncTestClient, make_token: Callable[..., str]) -> None:
    token = make_token(exp=time.time() + 300.5, roles=["tournament_director"], jti="abc")
    response = await sample.get("/api/v1/sample/directors", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("claims", [{"sub": 5}, {"exp": str(NOW + 300)}, {"iat": "now"}])
async def test_service_tokens_of_the_wrong_type_are_refused(sample: AsyncTestClient, claims: dict[str, Any]) -> None:
    body = {
        "iss": "tablium-service",
        "aud": "sample",
        "sub": "wallet",
        "iat": int(time.time()),
        "exp": int(time.time()) + 300,
        **claims,
    }
    token = jwt.encode(body, development_service_key("wallet"), algorithm="EdDSA", headers={"kid": "dev:wallet"})
    response = await sample.get("/internal/sample/who", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401, response.text
