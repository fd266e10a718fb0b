"""Service identity can't be forged: each service signs with its own key, a callee knows which key is
whose, a token is for one callee, and each internal route names the services it accepts.

The sample service here is configured as production is (its own key, a trust store of real keys), over
HTTP through the kit's whole stack; the development trust (empty store) is what the other tests use.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import jwt
import msgspec
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat
from litestar import get
from litestar.exceptions import ImproperlyConfiguredException
from litestar.testing import AsyncTestClient

from tablium_kit.app import ServiceDefinition, create_service_app
from tablium_kit.auth import (
    MAX_SERVICE_TOKEN_TTL_S,
    ServiceTokens,
    ServiceTokenVerifier,
    ServiceTrust,
    caller,
    from_services,
    service_key_id,
)
from tablium_kit.errors import Unauthorized
from tablium_kit.settings import InsecureSettingsError, ServiceSettings

from .conftest import InternalController

# The secret every service shared before (issue 11 item 9): a token signed with it must get nowhere.
OLD_SHARED_SECRET = "dev-only-service-token-secret-change-me-0123456789"


def public_pem(key: Ed25519PrivateKey) -> str:
    return key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()


def private_pem(key: Ed25519PrivateKey) -> str:
    return key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode()


def tokens_of(name: str, key: Ed25519PrivateKey, ttl_seconds: int = 120) -> ServiceTokens:
    return ServiceTokens(name, key, kid=service_key_id(key.public_key()), ttl_seconds=ttl_seconds)


def header(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


KEYS = {name: Ed25519PrivateKey.generate() for name in ("sample", "wallet", "wallet-next", "lobby", "player")}
WALLET, WALLET_NEXT = tokens_of("wallet", KEYS["wallet"]), tokens_of("wallet", KEYS["wallet-next"])
LOBBY, PLAYER = tokens_of("lobby", KEYS["lobby"]), tokens_of("player", KEYS["player"])


def trust(*names: str) -> dict[str, list[str]]:
    """A trust store (as settings hold it) with the keys named, by their owner."""
    store: dict[str, list[str]] = {}
    for name in names:
        store.setdefault(name.removesuffix("-next"), []).append(public_pem(KEYS[name]))
    return store


@pytest.fixture(scope="module")
async def production_like(make_database: Callable[[str], Awaitable[str]]) -> AsyncIterator[AsyncTestClient]:
    settings = ServiceSettings.from_env(
        "sample",
        {
            "TABLIUM_SAMPLE_DATABASE_URL": await make_database("identity"),
            "TABLIUM_ENVIRONMENT": "production",
            "TABLIUM_SAMPLE_SERVICE_KEY": private_pem(KEYS["sample"]),
            # Two wallet keys: one rotating in.
            "TABLIUM_SERVICE_TRUST": json.dumps(trust("wallet", "wallet-next", "lobby", "player")),
        },
    )
    app = create_service_app(ServiceDefinition(settings=settings, title="sample", route_handlers=[InternalController]))
    async with AsyncTestClient(app=app) as client:
        yield client


async def refused(client: AsyncTestClient, path: str, token: str, status: int) -> None:
    response = await client.get(path, headers=header(token))
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"


async def test_a_route_takes_the_services_it_names_and_no_other(production_like: AsyncTestClient) -> None:
    for tokens in (WALLET, WALLET_NEXT):  # both of the wallet's keys, while one rotates in
        response = await production_like.get("/internal/sample/who", headers=header(tokens.token("sample")))
        assert response.json() == {"caller": "service:wallet"}
    await refused(production_like, "/internal/sample/who", LOBBY.token("sample"), 403)
    await refused(production_like, "/internal/sample/who", PLAYER.token("sample"), 403)
    response = await production_like.get("/internal/sample/either", headers=header(LOBBY.token("sample")))
    assert response.json() == {"caller": "service:lobby"}


def _signed(key: Ed25519PrivateKey, kid: str, **overrides: Any) -> str:
    now = int(time.time())
    claims = {"iss": "tablium-service", "sub": "wallet", "aud": "sample", "iat": now, "exp": now + 60, **overrides}
    present = {name: value for name, value in claims.items() if value is not None}  # None: left out
    return jwt.encode(present, key, algorithm="EdDSA", headers={"kid": kid})


async def test_a_service_cannot_pose_as_another(production_like: AsyncTestClient) -> None:
    lobby_kid = service_key_id(KEYS["lobby"].public_key())
    wallet_kid = service_key_id(KEYS["wallet"].public_key())
    # The lobby's own key, saying it is the wallet.
    await refused(production_like, "/internal/sample/who", _signed(KEYS["lobby"], lobby_kid), 401)
    # The lobby's key under the wallet's key id: the signature doesn't verify with the wallet's key.
    await refused(production_like, "/internal/sample/who", _signed(KEYS["lobby"], wallet_kid), 401)
    # A key nobody trusts, and the wallet's development key (a production trust store never takes those).
    stranger = Ed25519PrivateKey.generate()
    await refused(production_like, "/internal/sample/who", tokens_of("wallet", stranger).token("sample"), 401)
    await refused(production_like, "/internal/sample/who", ServiceTokens.development("wallet").token("sample"), 401)


async def test_the_old_shared_secret_and_other_algorithms_are_refused(production_like: AsyncTestClient) -> None:
    now = int(time.time())
    old = {"iss": "tablium-service", "aud": "tablium-internal", "sub": "service:wallet", "iat": now, "exp": now + 60}
    await refused(production_like, "/internal/sample/who", jwt.encode(old, OLD_SHARED_SECRET, algorithm="HS256"), 401)
    # HS256 with the old secret but the new claims and the wallet's key id.
    kid = service_key_id(KEYS["wallet"].public_key())
    new_claims = {**old, "aud": "sample", "sub": "wallet"}
    hmac = jwt.encode(new_claims, OLD_SHARED_SECRET, algorithm="HS256", headers={"kid": kid})
    await refused(production_like, "/internal/sample/who", hmac, 401)
    unsigned = jwt.encode(new_claims, None, algorithm="none", headers={"kid": kid})
    await refused(production_like, "/internal/sample/who", unsigned, 401)


async def test_a_token_for_another_service_expired_or_too_long_lived_is_refused(
    production_like: AsyncTestClient,
) -> None:
    await refused(production_like, "/internal/sample/who", WALLET.token("lobby"), 401)
    kid = service_key_id(KEYS["wallet"].public_key())
    now = int(time.time())
    expired = _signed(KEYS["wallet"], kid, iat=now - 200, exp=now - 100)
    await refused(production_like, "/internal/sample/who", expired, 401)
    forever = _signed(KEYS["wallet"], kid, exp=now + MAX_SERVICE_TOKEN_TTL_S + 60)
    await refused(production_like, "/internal/sample/who", forever, 401)
    for missing in ("aud", "iss", "sub"):
        token = _signed(KEYS["wallet"], kid, **{missing: None})
        await refused(production_like, "/internal/sample/who", token, 401)


async def test_no_token_or_a_user_token_is_401(
    production_like: AsyncTestClient, make_token: Callable[..., str]
) -> None:
    assert (await production_like.get("/internal/sample/who")).status_code == 401
    await refused(production_like, "/internal/sample/who", make_token(), 401)


def test_rotation_the_old_key_is_accepted_until_removed() -> None:
    both = ServiceTrust({"wallet": [KEYS["wallet"].public_key(), KEYS["wallet-next"].public_key()]})
    old, new = WALLET.token("sample").encode(), WALLET_NEXT.token("sample").encode()
    verifier = ServiceTokenVerifier("sample", both)
    assert verifier.verify(b"Bearer " + old).subject == "service:wallet"
    assert verifier.verify(b"Bearer " + new).subject == "service:wallet"
    retired = ServiceTokenVerifier("sample", ServiceTrust({"wallet": [KEYS["wallet-next"].public_key()]}))
    assert retired.verify(b"Bearer " + new).subject == "service:wallet"
    with pytest.raises(Unauthorized, match="unknown key"):
        retired.verify(b"Bearer " + old)


def test_one_key_trusted_for_two_services_is_refused() -> None:
    key = KEYS["wallet"].public_key()
    with pytest.raises(ValueError, match="both"):
        ServiceTrust({"wallet": [key], "lobby": [key]})


def test_tokens_are_one_per_callee_reused_then_reminted_before_expiry(monkeypatch: pytest.MonkeyPatch) -> None:
    tokens = tokens_of("event", Ed25519PrivateKey.generate(), ttl_seconds=60)
    first = tokens.token("wallet")
    assert tokens.token("wallet") == first
    assert jwt.decode(tokens.token("lobby"), options={"verify_signature": False})["aud"] == "lobby"
    claims = jwt.decode(first, options={"verify_signature": False})
    assert (claims["sub"], claims["aud"], claims["exp"] - claims["iat"]) == ("event", "wallet", 60)
    later = time.time() + 31  # under half of the lifetime left: a new one
    monkeypatch.setattr(time, "time", lambda: later)
    assert tokens.token("wallet") != first


def test_production_refuses_the_development_key_and_trust() -> None:
    key = private_pem(KEYS["sample"])
    store = json.dumps(trust("wallet"))
    for env in ({}, {"TABLIUM_SERVICE_KEY": key}, {"TABLIUM_SERVICE_TRUST": store}):
        with pytest.raises(InsecureSettingsError, match="service_"):
            ServiceSettings.from_env("sample", {"TABLIUM_ENVIRONMENT": "production", **env})
    settings = ServiceSettings.from_env(
        "sample", {"TABLIUM_ENVIRONMENT": "production", "TABLIUM_SERVICE_KEY": key, "TABLIUM_SERVICE_TRUST": store}
    )
    assert ServiceTokens.from_settings(settings).kid == service_key_id(KEYS["sample"].public_key())


def test_the_service_key_may_be_a_file(tmp_path: Any) -> None:
    path = tmp_path / "sample.pem"
    path.write_text(private_pem(KEYS["sample"]))
    settings = ServiceSettings.from_env("sample", {"TABLIUM_SERVICE_KEY": str(path)})
    assert ServiceTokens.from_settings(settings).kid == service_key_id(KEYS["sample"].public_key())


@get("/internal/anyone", security=[{"ServiceToken": []}])
async def anyone() -> dict[str, str]:
    return {"caller": caller().subject}


def test_an_internal_route_naming_no_service_refuses_to_start() -> None:
    settings = ServiceSettings.from_env("sample", {"TABLIUM_ENVIRONMENT": "test"})
    with pytest.raises(ImproperlyConfiguredException, match="from_services"):
        create_service_app(ServiceDefinition(settings=settings, title="sample", route_handlers=[anyone]))
    with pytest.raises(ValueError, match="names the services"):
        from_services()


async def test_the_openapi_names_the_services_a_route_accepts(production_like: AsyncTestClient) -> None:
    document = msgspec.json.decode((await production_like.get("/schema/openapi.json")).content)
    assert document["paths"]["/internal/sample/who"]["get"]["security"] == [{"ServiceToken": ["wallet"]}]
    either = document["paths"]["/internal/sample/either"]["get"]["security"]
    assert either == [{"ServiceToken": ["lobby", "wallet"]}]
