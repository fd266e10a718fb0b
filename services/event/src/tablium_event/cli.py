"""``tablium-event``: serve, migrate, openapi, revision."""

from __future__ import annotations

from tablium_event.app import MIGRATIONS
from tablium_event.settings import load_settings
from tablium_kit.cli import service_cli

main = service_cli(
    "event", settings=load_settings, app_factory="tablium_event.app:create_app", migrations_dir=MIGRATIONS
)
