"""What every service accepts as input (inputs.py): strict JSON, no control characters, exact patterns."""

from __future__ import annotations

import re
from typing import Annotated, Any

import msgspec
import pytest
from litestar.testing import AsyncTestClient

from tablium_kit.inputs import exact

JSON = {"Content-Type": "application/json"}
VALID = {"sound": True, "country": "US", "seats": 6}


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


async def test_a_valid_body_is_accepted(sample: AsyncTestClient) -> None:
    response = await sample.post("/api/v1/sample/settings", json=VALID)
    assert response.status_code == 200, response.text
    assert response.json() == VALID


async def test_invalid_utf8_is_a_400(sample: AsyncTestClient) -> None:
    body = assert_problem(
        await sample.post("/api/v1/sample/settings", content=b'{"sound":true,"country":"\xff"}', headers=JSON), 400
    )
    assert "UTF-8" in body["detail"]


@pytest.mark.parametrize(
    "field",
    [
        {"seats": "9"},  # a numeric string is not an integer
        {"seats": 1e3},  # nor is a float, however round
        {"seats": True},
        {"sound": "true"},  # a string is not a boolean
        {"sound": 1},
    ],
)
async def test_bodies_are_decoded_strictly(sample: AsyncTestClient, field: dict[str, Any]) -> None:
    body = assert_problem(await sample.post("/api/v1/sample/settings", json={**VALID, **field}), 400)
    [error] = body["errors"]
    assert error["key"] == next(iter(field)), body
    assert error["source"] == "body", body
    assert error["message"].startswith("Expected"), body


async def test_an_unknown_field_is_named(sample: AsyncTestClient) -> None:
    body = assert_problem(await sample.post("/api/v1/sample/settings", json={**VALID, "is_admin": True}), 400)
    assert "is_admin" in str(body)


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "application/json; charset=latin-1", None],
)
async def test_a_body_that_does_not_say_it_is_json_is_a_415(sample: AsyncTestClient, content_type: str | None) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = await sample.post("/api/v1/sample/settings", content=msgspec.json.encode(VALID), headers=headers)
    assert_problem(response, 415)


@pytest.mark.parametrize("content_type", ["application/json; charset=UTF-8", "application/merge-patch+json"])
async def test_json_media_types_are_accepted(sample: AsyncTestClient, content_type: str) -> None:
    response = await sample.post(
        "/api/v1/sample/settings", content=msgspec.json.encode(VALID), headers={"Content-Type": content_type}
    )
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "raw",
    [
        b'"\\u0000"',  # NUL: Postgres refuses it in text
        b'"US\\n"',
        b'"U\\tS"',
        b'"\\u001b[2J"',
        b'"\\u007F"',
        '"U\u0085S"'.encode(),  # C1 (NEL), raw UTF-8
        b'"U\x7fS"',  # DEL, raw
    ],
)
async def test_control_characters_in_body_text_are_refused(sample: AsyncTestClient, raw: bytes) -> None:
    content = b'{"sound":true,"country":' + raw + b"}"
    body = assert_problem(await sample.post("/api/v1/sample/settings", content=content, headers=JSON), 400)
    assert "control characters" in body["detail"]


async def test_an_escaped_backslash_is_not_a_control_character(sample: AsyncTestClient) -> None:
    # "\\n" in JSON is a backslash followed by "n": the pattern refuses it, not the control check.
    content = b'{"sound":true,"country":"\\\\n"}'
    body = assert_problem(await sample.post("/api/v1/sample/settings", content=content, headers=JSON), 400)
    assert "control" not in str(body)
    assert (await sample.post("/api/v1/sample/seats", json={"table": "a\\nb", "seat": 1})).status_code == 201


@pytest.mark.parametrize(
    ("path", "where"),
    [
        ("/api/v1/sample/echo/a%00b", "path"),
        ("/api/v1/sample/echo/a%0Ab", "path"),
        ("/api/v1/sample/echo/ok?q=a%00", "query string"),
        ("/api/v1/sample/echo/ok?q=%C2%85", "query string"),
        ("/api/v1/sample/echo/ok?q=%1b", "query string"),
    ],
)
async def test_control_characters_in_path_and_query_are_refused(sample: AsyncTestClient, path: str, where: str) -> None:
    response = await sample.get(path)
    body = assert_problem(response, 400)
    assert where in body["detail"]
    assert response.headers["x-request-id"]


async def test_clean_path_and_query_pass(sample: AsyncTestClient) -> None:
    response = await sample.get("/api/v1/sample/echo/caf%C3%A9?q=a%20b+%25")
    assert response.status_code == 200, response.text
    assert response.json() == {"word": "café", "q": "a b %"}


@pytest.mark.parametrize("pattern", ["[A-Z]{2}", "[a-z]{2}(-[A-Z]{2})?", "a|b"])
def test_exact_patterns_match_whole_strings_without_a_trailing_newline(pattern: str) -> None:
    anchored = exact(pattern)
    example = {"[A-Z]{2}": "US", "[a-z]{2}(-[A-Z]{2})?": "en-GB", "a|b": "b"}[pattern]
    text = Annotated[str, msgspec.Meta(pattern=anchored)]
    assert msgspec.convert(example, text) == example
    for bad in (example + "\n", "x" + example, example + "x"):
        assert not re.search(anchored, bad)
        with pytest.raises(msgspec.ValidationError):
            msgspec.convert(bad, text)
