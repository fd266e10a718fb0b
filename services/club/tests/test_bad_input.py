"""Bad input on every club endpoint: problem+json 4xx, never a 500 (issue 14).

Every route of the app is taken from its OpenAPI document and called by a club's owner (so permission
checks pass and the input reaches the deepest validation) with bad path parameters (not a UUID, unknown
ids, oversized strings) and, where it takes a body, malformed JSON, the wrong JSON type, unknown fields,
each field of its schema with the wrong type or oversized, and numbers past 128 bits.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

from club_support import Clubs, bearer
from litestar.testing import AsyncTestClient

TWO_128 = str(2**128)  # one past the largest amount
MAX_128 = str(2**128 - 1)
HUGE = "x" * 100_000
JSON = {"content-type": "application/json"}


def routes(client: AsyncTestClient) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(method, path template, operation) of every /api/v1 operation."""
    schema = client.app.openapi_schema.to_schema()
    for path, item in schema["paths"].items():
        if path.startswith("/api/v1"):
            for method, operation in item.items():
                if method in ("get", "post", "put", "patch", "delete"):
                    yield method.upper(), path, operation


def body_fields(client: AsyncTestClient, operation: dict[str, Any]) -> dict[str, dict[str, Any]]:
    content = operation.get("requestBody", {}).get("content", {})
    schema = next(iter(content.values()), {}).get("schema", {})
    ref = schema.get("$ref", "")
    if ref:
        schema = client.app.openapi_schema.to_schema()["components"]["schemas"][ref.rsplit("/", 1)[-1]]
    properties: dict[str, dict[str, Any]] = schema.get("properties", {})
    return properties


def wrong_values(field: dict[str, Any]) -> list[Any]:
    """Values of the wrong type, oversized, or past 128 bits for a field's schema."""
    kinds = {field.get("type")} | {o.get("type") for o in field.get("oneOf", []) + field.get("anyOf", [])}
    values: list[Any] = []
    if "string" in kinds:
        values += [12345, HUGE, TWO_128, "-1", "\x00"]
    formats = {field.get("format")} | {o.get("format") for o in field.get("oneOf", []) + field.get("anyOf", [])}
    if "date-time" in formats:
        # Valid instants whose UTC lies past year 9999 or before year 1 (Python can't hold them).
        values += ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00", "2030-01-01T00:00:00"]
    if "integer" in kinds or "number" in kinds:
        values += ["1", 2**128, 2**64, -(2**63) - 1, 1.5]
    if "boolean" in kinds:
        values += ["true", 2]
    if "array" in kinds:
        values += ["x", [HUGE] * 3, [{"bad": 1}] * 1000]
    return values


async def test_every_club_endpoint_answers_bad_input_with_a_problem_never_a_500(
    client: AsyncTestClient, clubs: Clubs
) -> None:
    owner = uuid.uuid4()
    club = await clubs.create(owner)
    member = await clubs.add_member(club, owner)
    code = await clubs.invite(club, owner)
    real = {"club_id": club, "player_id": str(member), "code": code, "union_id": str(uuid.uuid4())}
    calls = 0
    failures: list[str] = []

    async def check(method: str, path: str, **kwargs: Any) -> None:
        nonlocal calls
        calls += 1
        headers = {**bearer(owner), **kwargs.pop("headers", {})}
        response = await client.request(method, path, headers=headers, **kwargs)
        sent = repr(kwargs)[:120]
        if response.status_code >= 500:
            failures.append(f"{method} {path[:100]} {sent}: {response.status_code} {response.text[:200]}")
        elif response.status_code >= 400 and response.headers.get("content-type") != "application/problem+json":
            failures.append(f"{method} {path[:100]} {sent}: {response.status_code} is not problem+json")

    async def refused(method: str, path: str, **kwargs: Any) -> None:
        nonlocal calls
        calls += 1
        headers = {**bearer(owner), **kwargs.pop("headers", {})}
        response = await client.request(method, path, headers=headers, **kwargs)
        sent = repr(kwargs)[:120]
        if not 400 <= response.status_code < 500:
            failures.append(f"{method} {path[:100]} {sent}: {response.status_code}, not a 4xx")
        elif response.headers.get("content-type") != "application/problem+json":
            failures.append(f"{method} {path[:100]} {sent}: {response.status_code} is not problem+json")

    for method, template, operation in routes(client):
        params = re.findall(r"\{(\w+)\}", template)

        def fill(template: str = template, params: list[str] = params, **override: str) -> str:
            path = template
            for name in params:
                path = path.replace("{" + name + "}", override.get(name, real.get(name, str(uuid.uuid4()))))
            return path

        body_kinds = method in ("POST", "PUT", "PATCH") and "requestBody" in operation
        # Path parameters: not a UUID, oversized, unknown, the nil and the all-ones UUID.
        for name in params:
            for bad in ("not-a-uuid", "1" * 2000, "%00", "ffffffff-ffff-ffff-ffff-fffffffffffff"):
                await refused(method, fill(**{name: bad}), json={} if body_kinds else None)
            for unknown in (str(uuid.uuid4()), "00000000-0000-0000-0000-000000000000"):
                await check(method, fill(**{name: unknown}), json={} if body_kinds else None)
        if not body_kinds:
            continue
        path = fill()
        for raw in (b"{", b"[]", b'"x"', b"null", b"1e999999", b"\xff\xfe", b'{"a": ' * 5000):
            await refused(method, path, content=raw, headers=JSON)
        await refused(method, path, json={"no_such_field": 1})
        # Past the request size limit.
        await refused(method, path, content=b'{"name": "' + b"x" * 2_000_000 + b'"}', headers=JSON)
        fields = body_fields(client, operation)
        for name, field in fields.items():
            for value in ({"nested": True}, [1, 2]):  # no field here takes either
                await refused(method, path, json={name: value})
            for value in wrong_values(field):
                await check(method, path, json={name: value})
            await check(method, path, json={name: MAX_128})
    assert calls > 300, calls
    assert not failures, "\n".join(failures)
