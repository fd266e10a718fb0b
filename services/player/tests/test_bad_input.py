"""Every player endpoint answers bad input with a problem+json 4xx, never a 500."""

from __future__ import annotations

from typing import Any

import pytest
from litestar.testing import AsyncTestClient

# (method, path, a valid body) for every endpoint that takes a body.
BODY_ENDPOINTS = [
    ("POST", "/api/v1/auth/register", {"username": "someone", "email": "a@b.io", "password": "long enough pw"}),
    ("POST", "/api/v1/auth/login", {"login": "someone", "password": "long enough pw"}),
    ("POST", "/api/v1/auth/refresh", {"refresh_token": "abc"}),
    ("POST", "/api/v1/auth/logout", {"refresh_token": "abc"}),
    ("PATCH", "/api/v1/players/me", {"display_name": "Ace"}),
    ("PUT", "/api/v1/players/me/preferences", {"four_color_deck": True}),
    ("POST", "/api/v1/admin/players/{id}/roles", {"roles": ["player"]}),
]
WRONG_TYPES: dict[str, dict[str, Any]] = {
    "/api/v1/auth/register": {"username": 42, "email": ["x"], "password": None},
    "/api/v1/auth/login": {"login": 1, "password": 2},
    "/api/v1/auth/refresh": {"refresh_token": 7},
    "/api/v1/auth/logout": {"refresh_token": {"a": 1}},
    "/api/v1/players/me": {"display_name": 5},
    "/api/v1/players/me/preferences": {"four_color_deck": "yes"},
    "/api/v1/admin/players/{id}/roles": {"roles": "admin"},
}


@pytest.fixture(scope="module")
async def admin(client: AsyncTestClient, settings: Any) -> dict[str, Any]:
    """An admin, so admin routes get past authorization and reach body validation."""
    from tablium_kit import db
    from tablium_player.app import password_hasher
    from tablium_player.service import create_player

    engine = db.create_engine(settings.database_url, pool_size=1)
    async with db.session_factory(engine)() as session, session.begin():
        player = await create_player(
            session,
            password_hasher(settings),
            username="boss_admin",
            email="boss@example.com",
            password="admin password 1",
            roles=["player", "admin"],
        )
    await engine.dispose()
    response = await client.post("/api/v1/auth/login", json={"login": "boss_admin", "password": "admin password 1"})
    assert response.status_code == 200
    return {"id": str(player.id), "headers": {"Authorization": f"Bearer {response.json()['access_token']}"}}


def assert_problem(response: Any, status: int | tuple[int, ...]) -> dict[str, Any]:
    statuses = status if isinstance(status, tuple) else (status,)
    assert response.status_code in statuses, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/problem+json"), response.headers
    body: dict[str, Any] = response.json()
    assert body["status"] == response.status_code
    assert body["title"]
    assert body["type"]
    return body


def target(path: str, admin: dict[str, Any]) -> str:
    return path.replace("{id}", admin["id"])


@pytest.mark.parametrize(("method", "path", "valid"), BODY_ENDPOINTS)
async def test_malformed_json(
    client: AsyncTestClient, admin: dict[str, Any], method: str, path: str, valid: Any
) -> None:
    response = await client.request(
        method,
        target(path, admin),
        content=b'{"username": "x",',
        headers={**admin["headers"], "Content-Type": "application/json"},
    )
    assert_problem(response, 400)


@pytest.mark.parametrize(("method", "path", "valid"), BODY_ENDPOINTS)
async def test_wrong_types(client: AsyncTestClient, admin: dict[str, Any], method: str, path: str, valid: Any) -> None:
    response = await client.request(method, target(path, admin), json=WRONG_TYPES[path], headers=admin["headers"])
    body = assert_problem(response, 400)
    assert "Expected" in str(body), body  # says what was wrong


@pytest.mark.parametrize(("method", "path", "valid"), BODY_ENDPOINTS)
async def test_unknown_fields(
    client: AsyncTestClient, admin: dict[str, Any], method: str, path: str, valid: Any
) -> None:
    response = await client.request(
        method, target(path, admin), json={**valid, "is_admin": True}, headers=admin["headers"]
    )
    body = assert_problem(response, 400)
    assert "is_admin" in str(body)


@pytest.mark.parametrize(("method", "path", "valid"), BODY_ENDPOINTS)
async def test_oversized_body(
    client: AsyncTestClient, admin: dict[str, Any], method: str, path: str, valid: Any
) -> None:
    huge = {**valid, "padding": "x" * (200 * 1024)}
    response = await client.request(method, target(path, admin), json=huge, headers=admin["headers"])
    assert_problem(response, 413)


@pytest.mark.parametrize(("method", "path", "valid"), BODY_ENDPOINTS)
async def test_body_not_an_object(
    client: AsyncTestClient, admin: dict[str, Any], method: str, path: str, valid: Any
) -> None:
    response = await client.request(method, target(path, admin), json=[1, 2, 3], headers=admin["headers"])
    assert_problem(response, 400)


@pytest.mark.parametrize(
    "body",
    [
        {"username": "ab", "email": "a@b.io", "password": "long enough pw"},
        {"username": "white space", "email": "a@b.io", "password": "long enough pw"},
        {"username": "okname", "email": "not-an-email", "password": "long enough pw"},
        {"username": "okname", "email": "a@b.io", "password": "short"},
        {"username": "okname", "email": "a@b.io", "password": "okname"},
    ],
)
async def test_register_validation(client: AsyncTestClient, body: dict[str, str]) -> None:
    response = await client.post("/api/v1/auth/register", json=body)
    assert_problem(response, (400, 422))


async def test_bad_path_parameter_and_unknown_route(client: AsyncTestClient) -> None:
    assert_problem(await client.get("/api/v1/players/not-a-uuid"), (400, 404))
    assert_problem(await client.get("/api/v1/nothing-here"), 404)
    assert_problem(await client.delete("/api/v1/auth/login"), 405)


async def test_admin_can_set_roles_and_unknown_roles_are_refused(
    client: AsyncTestClient, api: Any, admin: dict[str, Any]
) -> None:
    user = await api.register()
    path = f"/api/v1/admin/players/{user['id']}/roles"
    ok = await client.post(path, json={"roles": ["player", "tournament_director"]}, headers=admin["headers"])
    assert ok.status_code == 200, ok.text
    assert ok.json()["roles"] == ["player", "tournament_director"]
    assert_problem(await client.post(path, json={"roles": ["player", "wizard"]}, headers=admin["headers"]), 422)
    assert_problem(await client.post(path, json={"roles": ["admin"]}, headers=admin["headers"]), 422)
