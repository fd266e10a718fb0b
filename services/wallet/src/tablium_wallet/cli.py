"""``tablium-wallet``: serve, migrate, openapi, revision."""

from __future__ import annotations

from tablium_kit.cli import service_cli
from tablium_wallet.app import MIGRATIONS
from tablium_wallet.settings import load_settings

main = service_cli(
    "wallet", settings=load_settings, app_factory="tablium_wallet.app:create_app", migrations_dir=MIGRATIONS
)
