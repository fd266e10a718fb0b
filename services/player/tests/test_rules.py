"""Account rules on any input: a 422 or a value that fits its column, never a crash (a 500)."""

from __future__ import annotations

import contextlib
import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st

from tablium_kit.errors import InvalidInput
from tablium_player.db.models import Player
from tablium_player.domain import rules

# Letters that NFKC or case folding change or expand: fullwidth, ligatures, sharp s, dotted I, ...
TRICKY = st.sampled_from(list("\uff41\uff21\ufb03\u00df\u1e9e\u0130\u0131\u0307\u2126@."))
TEXT = st.lists(st.one_of(st.characters(), TRICKY), max_size=300).map("".join)


def column_length(name: str) -> int:
    length: int = Player.__table__.c[name].type.length
    return length


@given(TEXT)
def test_identity_keys_are_stable(value: str) -> None:
    key = rules.identity_key(value)
    assert rules.identity_key(key) == key


@given(TEXT)
def test_a_username_is_refused_or_fits(username: str) -> None:
    with contextlib.suppress(InvalidInput):
        stored = rules.normalize_username(username)
        assert len(stored) <= column_length("username")
        assert len(rules.identity_key(stored)) <= column_length("username_key")


@given(st.one_of(TEXT, st.builds("{}@{}.com".format, TEXT, st.from_regex(r"[a-z0-9]{1,20}", fullmatch=True))))
def test_an_email_is_refused_or_fits(email: str) -> None:
    with contextlib.suppress(InvalidInput):
        stored = rules.normalize_email(email)
        assert not any(unicodedata.category(c) == "Cc" for c in stored)
        assert len(stored) <= column_length("email")
        assert len(rules.identity_key(stored)) <= column_length("email_key")


@settings(max_examples=50, deadline=None)  # zxcvbn takes up to ~0.1 s on the longest passwords
@given(TEXT)
def test_any_password_is_accepted_or_refused_with_a_reason(password: str) -> None:
    with contextlib.suppress(InvalidInput):
        rules.check_password(password, username="someone", email="someone@example.com")
