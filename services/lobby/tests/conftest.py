"""Fixtures (lobby_support.py): the real wallet, lobby apps and processes, a JWKS server of the test key."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from lobby_support import client, jwks_url, ledger, redis, settings, start_lobby, wallet_url

__all__ = ["client", "jwks_url", "ledger", "redis", "settings", "start_lobby", "wallet_url"]
