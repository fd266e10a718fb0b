"""Register, log in, read and change the profile and preferences."""

from __future__ import annotations

from typing import Any

from litestar.testing import AsyncTestClient


async def test_register_login_profile(client: AsyncTestClient, api: Any) -> None:
    user = await api.register()
    tokens = await api.login(user)
    assert tokens["token_type"] == "Bearer"
    assert tokens["expires_in"] == 900
    me = await client.get("/api/v1/players/me", headers=api.bearer(tokens))
    assert me.status_code == 200, me.text
    body = me.json()
    assert body["username"] == user["username"]
    assert body["email"] == user["email"]
    assert body["roles"] == ["player"]
    assert (body["level"], body["xp"]) == (1, 0)
    assert body["stats"]["hands_played"] == 0


async def test_login_by_email_any_case(client: AsyncTestClient, api: Any) -> None:
    user = await api.register()
    response = await client.post(
        "/api/v1/auth/login", json={"login": user["email"].upper(), "password": user["password"]}
    )
    assert response.status_code == 200, response.text


async def test_wrong_password_is_401_problem(client: AsyncTestClient, api: Any) -> None:
    user = await api.register()
    response = await client.post("/api/v1/auth/login", json={"login": user["username"], "password": "wrong" * 3})
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["detail"] == "invalid login or password"
    unknown = await client.post("/api/v1/auth/login", json={"login": "nobody_here", "password": "wrong" * 3})
    assert unknown.status_code == 401
    assert unknown.json()["detail"] == response.json()["detail"]  # no account enumeration


async def test_usernames_and_emails_unique_ignoring_case(client: AsyncTestClient, api: Any) -> None:
    user = await api.register()
    same_name = {**api.new_user(), "username": user["username"].upper()}
    response = await client.post("/api/v1/auth/register", json=same_name)
    assert response.status_code == 409
    assert response.json()["detail"] == "username is taken"
    same_email = {**api.new_user(), "email": user["email"].upper()}
    response = await client.post("/api/v1/auth/register", json=same_email)
    assert response.status_code == 409
    assert response.json()["detail"] == "e-mail address is already registered"


async def test_public_profile_hides_private_fields(client: AsyncTestClient, api: Any) -> None:
    user = await api.register()
    response = await client.get(f"/api/v1/players/{user['id']}")
    assert response.status_code == 200
    body = response.json()
    assert body["username"] == user["username"]
    assert "email" not in body
    assert "roles" not in body
    missing = await client.get("/api/v1/players/00000000-0000-0000-0000-000000000000")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")


async def test_update_profile_and_preferences(client: AsyncTestClient, api: Any) -> None:
    user = await api.register()
    headers = api.bearer(await api.login(user))
    changed = await client.patch("/api/v1/players/me", json={"display_name": "Ace", "country": "FR"}, headers=headers)
    assert changed.status_code == 200, changed.text
    assert (changed.json()["display_name"], changed.json()["country"]) == ("Ace", "FR")
    # Fields left out stay as they were; null clears.
    cleared = await client.patch("/api/v1/players/me", json={"country": None}, headers=headers)
    assert (cleared.json()["display_name"], cleared.json()["country"]) == ("Ace", None)

    defaults = await client.get("/api/v1/players/me/preferences", headers=headers)
    assert defaults.json()["four_color_deck"] is False
    prefs = {**defaults.json(), "four_color_deck": True, "language": "fr-FR"}
    put = await client.put("/api/v1/players/me/preferences", json=prefs, headers=headers)
    assert put.status_code == 200, put.text
    again = await client.get("/api/v1/players/me/preferences", headers=headers)
    assert again.json() == prefs


async def test_admin_sets_roles_others_cannot(client: AsyncTestClient, api: Any) -> None:
    user = await api.register()
    headers = api.bearer(await api.login(user))
    forbidden = await client.post(
        f"/api/v1/admin/players/{user['id']}/roles", json={"roles": ["player", "admin"]}, headers=headers
    )
    assert forbidden.status_code == 403
    assert forbidden.headers["content-type"].startswith("application/problem+json")


async def test_ready_checks_database_redis_and_broker(client: AsyncTestClient) -> None:
    import asyncio

    for _ in range(50):  # the relay connects in the background
        ready = await client.get("/ready")
        if ready.status_code == 200:
            break
        await asyncio.sleep(0.1)
    assert ready.json() == {"status": "ready", "checks": {"database": "up", "redis": "up", "broker": "up"}}


async def test_session_answers_from_the_token(client: AsyncTestClient, api: Any) -> None:
    user = await api.register()
    response = await client.get("/api/v1/auth/session", headers=api.bearer(await api.login(user)))
    assert response.json() == {"player_id": user["id"], "roles": ["player"]}
    assert (await client.get("/api/v1/auth/session")).status_code == 401
