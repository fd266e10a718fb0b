"""ASGI apps the HTTP benchmark compares against (imported by granian from bench/)."""

from __future__ import annotations

import os
from pathlib import Path

import msgspec
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from litestar import Controller, Litestar, get

from tablium_kit.app import ServiceDefinition, create_service_app
from tablium_kit.auth import BEARER, StaticKeySource, caller
from tablium_kit.settings import ServiceSettings

ROOT = Path(__file__).resolve().parents[1]
DEV_PUBLIC_KEY = ROOT / "services" / "player" / "dev-keys" / "jwt-dev-public.pem"


@get("/ping", sync_to_thread=False)
def bare_ping() -> dict[str, bool]:
    return {"ok": True}


class BareSession(msgspec.Struct, kw_only=True):
    player_id: str
    roles: list[str]


class BareAuthController(Controller):
    """The player's ``GET /auth/session`` shape (a controller method returning a Struct), without the kit."""

    path = "/api/v1/auth"

    @get("/session", sync_to_thread=False)
    def session(self) -> BareSession:
        return BareSession(player_id="6f1c2a52-0b7e-4b8e-9d2a-3c4d5e6f7a8b", roles=sorted({"player"}))


def create_bare_app() -> Litestar:
    """The baseline: plain Litestar, nothing else."""
    return Litestar(route_handlers=[bare_ping, BareAuthController])


@get("/ping", security=BEARER, sync_to_thread=False)
def kit_ping() -> dict[str, str]:
    return {"subject": caller().subject}


def create_kit_app() -> Litestar:
    """The same handler, authenticated, inside the service kit (auth, metrics, traces, logs, errors)."""
    from tablium_player.domain.tokens import key_id

    public_key = load_pem_public_key(DEV_PUBLIC_KEY.read_bytes())
    settings = ServiceSettings.from_env(
        "bench", {"TABLIUM_BENCH_DATABASE_URL": os.environ["BENCH_DATABASE_URL"], "TABLIUM_ENVIRONMENT": "test"}
    )
    return create_service_app(
        ServiceDefinition(
            settings=settings,
            title="kit ping",
            route_handlers=[kit_ping],
            key_source=StaticKeySource({key_id(public_key): public_key}),  # type: ignore[arg-type]
        )
    )
