"""A tiny service built with the kit's factory, to test what every service inherits."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any

import jwt
import msgspec
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from litestar import Controller, Request, get, post
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.testing import AsyncTestClient

from tablium_kit.app import ServiceDefinition, create_service_app
from tablium_kit.auth import BEARER, Principal, StaticKeySource, caller, from_services, requires_roles
from tablium_kit.errors import Conflict
from tablium_kit.inputs import exact
from tablium_kit.settings import ServiceSettings

KID = "test-key"
# Player ids, as user tokens carry them (a token whose subject is not a UUID is refused).
PLAYER_1 = "00000000-0000-4000-8000-000000000001"


class Seat(msgspec.Struct, forbid_unknown_fields=True):
    table: Annotated[str, msgspec.Meta(min_length=1)]
    seat: Annotated[int, msgspec.Meta(ge=1, le=10)]


class Settings(msgspec.Struct, forbid_unknown_fields=True):
    sound: bool
    country: Annotated[str, msgspec.Meta(pattern=exact("[A-Z]{2}"))]
    seats: int = 9


class SampleController(Controller):
    path = "/api/v1/sample"

    @get("/public")
    async def public(self) -> dict[str, str]:
        return {"hello": "world"}

    @get("/private", security=BEARER)
    async def private(self, request: Request[Principal, Any, Any]) -> dict[str, Any]:
        # request.user is the same principal as caller(); both stay available to handlers.
        return {"subject": request.user.subject, "roles": sorted(caller().roles)}

    @get("/me", security=BEARER)
    async def me(self) -> dict[str, str]:
        return {"subject": caller().subject}

    @get("/anyone")
    async def anyone(self) -> dict[str, str]:
        return {"subject": caller().subject}  # a public route has no caller: 401

    @get("/directors", security=BEARER, guards=[requires_roles("tournament_director")])
    async def directors(self) -> dict[str, bool]:
        return {"ok": True}

    @post("/seats")
    async def seat(self, data: JSONBody[Seat]) -> Seat:
        if data.table == "full":
            raise Conflict("table is full")
        return data

    @post("/settings", status_code=200)
    async def settings(self, data: JSONBody[Settings]) -> Settings:
        return data

    @get("/echo/{word:str}")
    async def echo(self, word: FromPath[str], q: FromQuery[str] = "") -> dict[str, str]:
        return {"word": word, "q": q}

    @get("/boom")
    async def boom(self) -> None:
        raise RuntimeError("secret internals: password=hunter2")


class InternalController(Controller):
    path = "/internal/sample"

    @get("/who", security=from_services("wallet"))
    async def who(self) -> dict[str, str]:
        return {"caller": caller().subject}

    @get("/either", security=from_services("wallet", "lobby"))
    async def either(self) -> dict[str, str]:
        return {"caller": caller().subject}


@pytest.fixture(scope="session")
def signing_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="session")
def make_token(signing_key: rsa.RSAPrivateKey) -> Callable[..., str]:
    def make(subject: str = PLAYER_1, roles: list[str] | None = None, **overrides: Any) -> str:
        now = int(time.time())
        claims = {
            "iss": "tablium-player",
            "aud": "tablium",
            "sub": subject,
            "iat": now,
            "exp": now + 300,
            "typ": "access",
            "roles": roles or ["player"],
            **overrides,
        }
        return jwt.encode(claims, signing_key, algorithm="RS256", headers={"kid": KID})

    return make


@pytest.fixture(scope="module")
async def sample_settings(make_database: Callable[[str], Awaitable[str]]) -> ServiceSettings:
    return ServiceSettings.from_env(
        "sample", {"TABLIUM_SAMPLE_DATABASE_URL": await make_database("sample"), "TABLIUM_ENVIRONMENT": "test"}
    )


@pytest.fixture(scope="module")
async def sample(sample_settings: ServiceSettings, signing_key: rsa.RSAPrivateKey) -> AsyncIterator[AsyncTestClient]:
    app = create_service_app(
        ServiceDefinition(
            settings=sample_settings,
            title="sample",
            route_handlers=[SampleController, InternalController],
            uses_redis=True,
            key_source=StaticKeySource({KID: signing_key.public_key()}),
        )
    )
    async with AsyncTestClient(app=app) as client:
        yield client
