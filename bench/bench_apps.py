"""ASGI apps the HTTP benchmark compares against (imported by granian from bench/)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import msgspec
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from litestar import Controller, Litestar, WebSocket, get, websocket
from litestar.datastructures import State
from litestar.exceptions import NotFoundException, WebSocketDisconnect

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


class BareProfile(msgspec.Struct, kw_only=True):
    id: UUID
    username: str
    display_name: str
    level: int
    xp: int
    member_since: datetime


_BARE_PLAYER_BY_ID = "SELECT * FROM players WHERE id = $1"


@get("/players/{player_id:uuid}")
async def bare_db_read(player_id: UUID, state: State) -> BareProfile:
    row = await state.pool.fetchrow(_BARE_PLAYER_BY_ID, player_id)
    if row is None:
        raise NotFoundException()
    return BareProfile(id=row["id"], username=row["username"], display_name=row["display_name"], level=row["level"],
                       xp=row["xp"], member_since=row["created_at"])  # fmt: skip


def create_bare_db_app() -> Litestar:
    """The database baseline: bare Litestar and a raw asyncpg pool doing the player's primary-key read
    (the same table and row as ``GET /players/me``), no authentication, no transaction."""

    size = int(os.environ.get("BENCH_BARE_POOL_SIZE", "10"))

    @contextlib.asynccontextmanager
    async def pool(app: Litestar) -> AsyncIterator[None]:
        async with asyncpg.create_pool(os.environ["BENCH_BARE_DSN"], min_size=size, max_size=size) as created:
            app.state.pool = created
            yield

    return Litestar(route_handlers=[bare_ping, bare_db_read], lifespan=[pool])


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


class _BareTable:
    def __init__(self, size: int) -> None:
        self.size = size
        self.sockets: list[WebSocket[Any, Any, Any]] = []
        self.seq = 0
        self.actor = 0


_BARE_TABLES: dict[str, _BareTable] = {}
# The lobby's mean message sizes for an action (its action-broadcast and its public turn); the lobby
# benchmark sets them from what its clients received from the lobby in the same run.
_ACTION_BYTES = int(os.environ.get("BENCH_ACTION_BYTES", "150"))
_TURN_BYTES = int(os.environ.get("BENCH_TURN_BYTES", "260"))


def _padded(message: dict[str, Any], size: int) -> str:
    text = msgspec.json.encode({**message, "pad": ""}).decode()
    return text[:-2] + "x" * max(0, size - len(text)) + '"}'


@websocket("/bare/{table_id:str}/ws")
async def bare_table(socket: WebSocket[Any, Any, Any], table_id: str, size: int = 6) -> None:
    """The baseline of the lobby benchmark: a table's sockets take turns; an action is broadcast to all
    (an action-broadcast and the next turn, the lobby's sizes), nothing stored, nothing checked but the turn."""
    await socket.accept()
    table = _BARE_TABLES.setdefault(table_id, _BareTable(size))
    seat = len(table.sockets)
    table.sockets.append(socket)
    await socket.send_text(msgspec.json.encode({"type": "snapshot", "seat": seat, "seq": table.seq}).decode())
    if len(table.sockets) == table.size:
        await _bare_broadcast(table, [_padded({"type": "turn", "seq": table.seq, "seat": 0}, _TURN_BYTES)])
    try:
        while True:
            message = msgspec.json.decode(await socket.receive_text())
            if message.get("type") != "action" or table.actor != seat:
                continue
            table.seq += 1
            table.actor = (seat + 1) % table.size
            action = {"type": "action-broadcast", "seq": table.seq, "seat": seat, "action": "check", "amount": "0"}
            turn = {"type": "turn", "seq": table.seq, "seat": table.actor}
            await _bare_broadcast(table, [_padded(action, _ACTION_BYTES), _padded(turn, _TURN_BYTES)])
    except WebSocketDisconnect:
        pass
    finally:
        table.sockets.remove(socket)
        if not table.sockets:
            _BARE_TABLES.pop(table_id, None)


async def _bare_broadcast(table: _BareTable, texts: list[str]) -> None:
    for text in texts:
        for socket in list(table.sockets):
            with contextlib.suppress(Exception):
                await socket.send_text(text)


def create_ws_broadcast_app() -> Litestar:
    """Bare Litestar WebSocket broadcast (the lobby benchmark's baseline)."""
    return Litestar(route_handlers=[bare_table])
