"""``tablium-club``: serve, migrate, openapi, revision."""

from __future__ import annotations

from tablium_club.app import MIGRATIONS
from tablium_club.settings import load_settings
from tablium_kit.cli import service_cli

main = service_cli("club", settings=load_settings, app_factory="tablium_club.app:create_app", migrations_dir=MIGRATIONS)
