"""Account rules: what a valid username, e-mail and password are; how XP makes levels."""

from __future__ import annotations

import re
import unicodedata

from zxcvbn import zxcvbn

from tablium_kit.errors import InvalidInput

USERNAME = re.compile(r"[A-Za-z0-9_]{3,20}")
# Deliberately modest: one @, a dotted domain, no spaces or control characters (Postgres refuses NUL).
# Deliverability is proven by mail, not regex.
EMAIL = re.compile(
    r"[^@\s\x00-\x1f\x7f-\x9f]{1,64}"  # local part
    r"@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9-]{1,63})+"
)
EMAIL_MAX = 254
PASSWORD_MIN, PASSWORD_MAX = 10, 128
# zxcvbn's scale: 3 is "safely unguessable" (about 10^8 guesses and up); 0-2 are found in its
# shipped lists of common passwords, names and words, or are simple patterns (1111111111, qwertyuiop).
PASSWORD_MIN_SCORE = 3
ROLES = frozenset({"player", "tournament_director", "admin"})


def identity_key(identifier: str) -> str:
    """The form two identifiers (usernames, e-mail addresses) are compared in: NFKC, case folded.

    This one function fills the ``*_key`` columns that the unique indexes are on and makes the
    keys that logins look up, so "is this taken?" and the database can never disagree. NFKC
    maps compatibility forms (fullwidth letters, ligatures) to their plain letters; casefold is
    full Unicode case folding (``ß`` → ``ss``, ``İ`` → ``i̇``), which ``lower()`` is not; the
    second NFKC makes the result stable (casefold can undo a normalisation).

    >>> identity_key("\\uff21LICE") == identity_key("alice")  # fullwidth A
    True
    >>> identity_key("Straße@example.com") == identity_key("STRASSE@example.com")
    True
    >>> identity_key("İx@example.com") == identity_key("ix@example.com")
    False
    """
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", identifier).casefold())


def normalize_username(username: str) -> str:
    """The username as stored (case kept for display): NFKC, so a fullwidth ``\\uff41lice`` is ``alice``."""
    username = unicodedata.normalize("NFKC", username)
    if not USERNAME.fullmatch(username):
        raise InvalidInput("username must be 3-20 characters: letters, digits or underscore")
    return username


def normalize_email(email: str) -> str:
    """The address as stored: NFKC, trimmed, the domain in lower case (the local part's case is the owner's)."""
    email = unicodedata.normalize("NFKC", email).strip()
    if len(email) > EMAIL_MAX or not EMAIL.fullmatch(email) or len(identity_key(email)) > EMAIL_MAX:
        raise InvalidInput("e-mail address is not valid")
    local, _, domain = email.rpartition("@")
    return f"{local}@{domain.lower()}"


def check_password(password: str, *, username: str, email: str) -> str:
    """Length, then guessability (NIST SP 800-63B: no composition rules, refuse common and
    derived passwords). zxcvbn ships its frequency lists in the package: nothing is fetched."""
    if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        raise InvalidInput(f"password must be {PASSWORD_MIN}-{PASSWORD_MAX} characters")
    if identity_key(password) in {identity_key(username), identity_key(email)}:
        raise InvalidInput("password must differ from the username and the e-mail address")
    local_part = email.rpartition("@")[0]
    strength = zxcvbn(password, user_inputs=[username, email, local_part, "tablium"], max_length=PASSWORD_MAX)
    if strength["score"] < PASSWORD_MIN_SCORE:
        hint = strength["feedback"]["warning"]
        raise InvalidInput("password is too easy to guess" + (f": {hint}" if hint else ""))
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
