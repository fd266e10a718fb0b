"""Bots that play at lobby tables over the WebSocket protocol (tests, demos, load)."""

from tablium_lobby.bots.client import Bot
from tablium_lobby.bots.policy import POLICIES, Policy

__all__ = ["POLICIES", "Bot", "Policy"]
