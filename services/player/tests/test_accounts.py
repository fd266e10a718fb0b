"""Register, log in, read and change the profile and preferences."""

from __future__ import annotations

from typing import Any

import pytest
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
    # One answer for either clash: naming the e-mail address would tell anyone it has an account.
    assert response.json()["detail"] == "username or e-mail address is already registered"
    same_email = {**api.new_user(), "email": user["email"].upper()}
    response = await client.post("/api/v1/auth/register", json=same_email)
    assert response.status_code == 409
    assert response.json()["detail"] == "username or e-mail address is already registered"


async def test_fullwidth_username_is_the_same_name(client: AsyncTestClient, api: Any) -> None:
    user = await api.register()
    fullwidth = "".join(chr(ord(c) + 0xFEE0) for c in user["username"])  # U+FF01..U+FF5E; NFKC undoes it
    assert fullwidth != user["username"]
    response = await client.post("/api/v1/auth/register", json={**api.new_user(), "username": fullwidth})
    assert response.status_code == 409, response.text
    login = await client.post("/api/v1/auth/login", json={"login": fullwidth.upper(), "password": user["password"]})
    assert login.status_code == 200, login.text
    me = await client.get("/api/v1/players/me", headers=api.bearer(login.json()))
    assert me.json()["id"] == user["id"]
    # A fullwidth name nobody has is stored in its plain form.
    plain = api.new_user()["username"]
    created = await api.register({**api.new_user(), "username": "\uff42" + plain[1:]})
    assert created["username"] == "b" + plain[1:]


@pytest.mark.parametrize(
    ("first", "second", "status"),
    [
        # Dotted capital I folds to "i" + combining dot above (U+0307), which Postgres' lower() doesn't:
        # the old check passed and the lower() index answered with a 500.
        ("\u0130x{n}@example.com", "i\u0307x{n}@example.com", 409),
        ("\u0130x{n}@example.com", "\u0130X{n}@EXAMPLE.COM", 409),
        ("\u0130x{n}@example.com", "ix{n}@example.com", 201),  # a different address, as in Python
        ("stra\u00dfe{n}@example.com", "STRASSE{n}@example.com", 409),  # full case folding: ß is ss
        ("\uff41x{n}@example.com", "ax{n}@example.com", 409),  # fullwidth
    ],
)
async def test_emails_compare_nfkc_casefolded(
    client: AsyncTestClient, api: Any, first: str, second: str, status: int
) -> None:
    n = api.new_user()["username"]
    owner = await api.register({**api.new_user(), "email": first.format(n=n)})
    response = await client.post("/api/v1/auth/register", json={**api.new_user(), "email": second.format(n=n)})
    assert response.status_code == status, response.text
    # Logging in with the second spelling reaches the owner's account exactly when it was refused as taken.
    login = await client.post("/api/v1/auth/login", json={"login": second.format(n=n), "password": owner["password"]})
    assert login.status_code == 200, login.text
    me = await client.get("/api/v1/players/me", headers=api.bearer(login.json()))
    assert (me.json()["id"] == owner["id"]) is (status == 409)


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
