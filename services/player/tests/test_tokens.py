"""Access tokens are checked strictly; refresh tokens rotate and reuse revokes the family."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from litestar.testing import AsyncTestClient

from tablium_player.app import signing_keys
from tablium_player.settings import PlayerSettings


def claims_for(player_id: str, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": "tablium-player",
        "aud": "tablium",
        "sub": player_id,
        "iat": now,
        "exp": now + 600,
        "typ": "access",
        "roles": ["player"],
    }
    claims.update(overrides)
    return claims


def b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


@pytest.fixture(scope="module")
def real_key(settings: PlayerSettings) -> Any:
    return signing_keys(settings)


async def me(client: AsyncTestClient, token: str) -> Any:
    return await client.get("/api/v1/players/me", headers={"Authorization": f"Bearer {token}"})


async def test_valid_token_signed_here_is_accepted(client: AsyncTestClient, api: Any, real_key: Any) -> None:
    user = await api.register()
    token = jwt.encode(claims_for(user["id"]), real_key.private_key, algorithm="RS256", headers={"kid": real_key.kid})
    assert (await me(client, token)).status_code == 200


@pytest.mark.parametrize(
    "case",
    ["expired", "other_key", "alg_none", "hs256_public_key", "wrong_audience", "refresh_typ", "garbage", "no_token"],
)
async def test_bad_access_tokens_are_rejected(client: AsyncTestClient, api: Any, real_key: Any, case: str) -> None:
    user = await api.register()
    claims = claims_for(user["id"])
    headers = {"kid": real_key.kid}
    if case == "expired":
        token = jwt.encode({**claims, "exp": int(time.time()) - 60}, real_key.private_key, "RS256", headers=headers)
    elif case == "other_key":
        other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        token = jwt.encode(claims, other, algorithm="RS256", headers=headers)
    elif case == "alg_none":
        token = f"{b64({'alg': 'none', 'typ': 'JWT', 'kid': real_key.kid})}.{b64(claims)}."
    elif case == "hs256_public_key":
        # The classic confusion attack: HMAC keyed with the (public) RSA key bytes.
        public_pem = real_key.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        import hashlib
        import hmac

        signing_input = f"{b64({'alg': 'HS256', 'typ': 'JWT', 'kid': real_key.kid})}.{b64(claims)}"
        signature = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
        token = f"{signing_input}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"
    elif case == "wrong_audience":
        token = jwt.encode({**claims, "aud": "elsewhere"}, real_key.private_key, "RS256", headers=headers)
    elif case == "refresh_typ":
        token = jwt.encode({**claims, "typ": "refresh"}, real_key.private_key, "RS256", headers=headers)
    elif case == "garbage":
        token = "not.a.token"
    else:
        response = await client.get("/api/v1/players/me")
        assert response.status_code == 401
        assert response.headers["content-type"].startswith("application/problem+json")
        return
    response = await me(client, token)
    assert response.status_code == 401, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_jwks_publishes_the_signing_key(client: AsyncTestClient, real_key: Any) -> None:
    response = await client.get("/api/v1/auth/jwks")
    assert response.status_code == 200
    keys = response.json()["keys"]
    assert [k["kid"] for k in keys] == [real_key.kid]
    assert keys[0]["alg"] == "RS256"
    assert "d" not in keys[0]


async def test_refresh_rotates(client: AsyncTestClient, api: Any) -> None:
    user = await api.register()
    first = await api.login(user)
    second = await client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert second.status_code == 200, second.text
    assert second.json()["refresh_token"] != first["refresh_token"]
    assert (await me(client, second.json()["access_token"])).status_code == 200
    third = await client.post("/api/v1/auth/refresh", json={"refresh_token": second.json()["refresh_token"]})
    assert third.status_code == 200


async def test_refresh_reuse_revokes_the_whole_family(client: AsyncTestClient, api: Any) -> None:
    user = await api.register()
    stolen = await api.login(user)
    other_login = await api.login(user)  # a second device: a different family
    rotated = await client.post("/api/v1/auth/refresh", json={"refresh_token": stolen["refresh_token"]})
    assert rotated.status_code == 200
    # The attacker replays the old token: reuse is detected...
    replay = await client.post("/api/v1/auth/refresh", json={"refresh_token": stolen["refresh_token"]})
    assert replay.status_code == 401
    assert "reuse" in replay.json()["detail"]
    # ...and the legitimate holder's newer token of that family is dead too.
    newest = await client.post("/api/v1/auth/refresh", json={"refresh_token": rotated.json()["refresh_token"]})
    assert newest.status_code == 401
    # The other device's login is untouched.
    other = await client.post("/api/v1/auth/refresh", json={"refresh_token": other_login["refresh_token"]})
    assert other.status_code == 200


async def test_logout_revokes_refresh(client: AsyncTestClient, api: Any) -> None:
    user = await api.register()
    tokens = await api.login(user)
    out = await client.post("/api/v1/auth/logout", json={"refresh_token": tokens["refresh_token"]})
    assert out.status_code == 204
    after = await client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert after.status_code == 401


async def test_unknown_refresh_token(client: AsyncTestClient) -> None:
    response = await client.post("/api/v1/auth/refresh", json={"refresh_token": "made-up"})
    assert response.status_code == 401


async def test_token_responses_are_not_stored(client: AsyncTestClient, api: Any) -> None:
    user = await api.register()
    login = await client.post("/api/v1/auth/login", json={"login": user["username"], "password": user["password"]})
    refresh = await client.post("/api/v1/auth/refresh", json={"refresh_token": login.json()["refresh_token"]})
    for response in (login, refresh):
        assert response.status_code == 200, response.text
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["pragma"] == "no-cache"


def test_production_refuses_the_development_signing_key(tmp_path: Path) -> None:
    from tablium_kit.auth import local_service_keys
    from tablium_kit.settings import InsecureSettingsError

    # A service key and trust store of its own: the development JWT key is what is left to refuse.
    service_keys = local_service_keys(["player"], tmp_path)
    with pytest.raises(InsecureSettingsError, match="JWT signing key"):
        PlayerSettings.from_env("player", {"TABLIUM_ENVIRONMENT": "production", **service_keys})
