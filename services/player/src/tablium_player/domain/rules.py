"""Account rules: what a valid username, e-mail and password are; how XP makes levels."""

from __future__ import annotations

import re

from tablium_kit.errors import InvalidInput

USERNAME = re.compile(r"^[A-Za-z0-9_]{3,20}$")
# Deliberately modest: one @, a dotted domain, no spaces. Deliverability is proven by mail, not regex.
EMAIL = re.compile(r"^[^@\s]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9-]{1,63})+$")
PASSWORD_MIN, PASSWORD_MAX = 10, 128
ROLES = frozenset({"player", "tournament_director", "admin"})


def check_username(username: str) -> str:
    if not USERNAME.fullmatch(username):
        raise InvalidInput("username must be 3-20 characters: letters, digits or underscore")
    return username


def normalize_email(email: str) -> str:
    email = email.strip()
    if len(email) > 254 or not EMAIL.fullmatch(email):
        raise InvalidInput("e-mail address is not valid")
    local, _, domain = email.rpartition("@")
    return f"{local}@{domain.lower()}"


def check_password(password: str, *, username: str) -> str:
    if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        raise InvalidInput(f"password must be {PASSWORD_MIN}-{PASSWORD_MAX} characters")
    if password.lower() == username.lower():
        raise InvalidInput("password must differ from the username")
    return password


def check_roles(roles: list[str]) -> list[str]:
    unknown = set(roles) - ROLES
    if unknown:
        raise InvalidInput(f"unknown roles: {', '.join(sorted(unknown))}")
    if "player" not in roles:
        raise InvalidInput("every account keeps the player role")
    return sorted(set(roles))


def xp_for_level(level: int) -> int:
    """Total XP needed to reach ``level``: 100 for level 2, then each level costs 50 more than the last.

    >>> [xp_for_level(n) for n in (1, 2, 3, 4)]
    [0, 100, 250, 450]
    """
    steps = level - 1
    return 100 * steps + 25 * steps * (steps - 1)


def level_for_xp(xp: int) -> int:
    """The level a player with ``xp`` total experience is at.

    >>> [level_for_xp(x) for x in (0, 99, 100, 249, 250, 450)]
    [1, 1, 2, 2, 3, 4]
    """
    level = 1
    while xp_for_level(level + 1) <= xp:
        level += 1
    return level
