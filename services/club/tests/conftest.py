"""Fixtures (club_support.py): the club app on its own database, its sessions, the calls tests share."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from club_support import client, clubs, sessions, settings

__all__ = ["client", "clubs", "sessions", "settings"]
