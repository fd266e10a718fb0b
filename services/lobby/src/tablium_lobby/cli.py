"""``tablium-lobby``: serve (with WebSocket upgrades), migrate, openapi, revision."""

from __future__ import annotations

from tablium_kit.cli import service_cli
from tablium_lobby.app import MIGRATIONS
from tablium_lobby.settings import load_settings

main = service_cli(
    "lobby",
    settings=load_settings,
    app_factory="tablium_lobby.app:create_app",
    migrations_dir=MIGRATIONS,
    websockets=True,
)
