"""Invite codes: short, unguessable, typed by people (no 0/O, 1/I/L)."""

from __future__ import annotations

import secrets
from datetime import datetime

ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
LENGTH = 10  # 31^10 ≈ 8e14: guessing one live code is hopeless at any request rate


def new_code() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))


def unusable_because(
    *, revoked_at: datetime | None, expires_at: datetime | None, max_uses: int | None, uses: int, now: datetime
) -> str | None:
    """Why a code cannot admit anyone now, or None when it can."""
    if revoked_at is not None:
        return "the invite code was revoked"
    if expires_at is not None and now >= expires_at:
        return "the invite code has expired"
    if max_uses is not None and uses >= max_uses:
        return "the invite code has been used up"
    return None
