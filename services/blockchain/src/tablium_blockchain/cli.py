"""``tablium-blockchain``: serve, migrate, openapi, revision."""

from __future__ import annotations

from tablium_blockchain.app import MIGRATIONS
from tablium_blockchain.settings import load_settings
from tablium_kit.cli import service_cli

main = service_cli(
    "blockchain", settings=load_settings, app_factory="tablium_blockchain.app:create_app", migrations_dir=MIGRATIONS
)
