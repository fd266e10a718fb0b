"""Verified tokens are remembered, but never past their expiry and never across token kinds."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest

from tablium_kit import auth
from tablium_kit.auth import LEEWAY_S, Principal, ServiceTokens, VerifiedTokens
from tablium_kit.errors import Unauthorized

SECRET = "a-test-service-secret-of-enough-length-0123"


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Counts pyjwt verifications done by the kit."""
    calls: list[str] = []
    real = jwt.decode

    def counting(token: str, *args: Any, **kwargs: Any) -> Any:
        calls.append(token)
        return real(token, *args, **kwargs)

    monkeypatch.setattr(auth.jwt, "decode", counting)
    return calls


def test_a_service_token_is_verified_once_then_answered_from_the_cache(decodes: list[str]) -> None:
    caller = ServiceTokens(SECRET, service_name="event")
    callee = ServiceTokens(SECRET, service_name="wallet")
    token = caller.token()
    for _ in range(3):
        principal = callee.verify(token)
        assert principal.subject == "service:event"
        assert principal.kind == "service"
    assert decodes == [token]


def test_a_cached_service_token_is_not_answered_past_its_expiry(
    monkeypatch: pytest.MonkeyPatch, decodes: list[str]
) -> None:
    callee = ServiceTokens(SECRET, service_name="wallet")
    token = ServiceTokens(SECRET, service_name="event", ttl_seconds=60).token()
    callee.verify(token)
    callee.verify(token)
    assert decodes == [token]
    # The kit's clock passes the expiry (pyjwt keeps its own clock, so the token verifies again
    # there): the cache must not answer, the token goes back through full verification.
    later = time.time() + 60 + LEEWAY_S + 1
    monkeypatch.setattr(auth.time, "time", lambda: later)
    callee.verify(token)
    assert decodes == [token, token]


def test_a_cached_entry_expires_with_the_token() -> None:
    cache = VerifiedTokens()
    principal = Principal(subject="service:event", kind="service")
    cache.put("t", principal, expires_at=time.time() - LEEWAY_S - 1)
    assert cache.get("t") is None
    cache.put("t", principal, expires_at=time.time() + 60)
    assert cache.get("t") == principal


def test_refused_tokens_are_not_remembered(decodes: list[str]) -> None:
    callee = ServiceTokens(SECRET, service_name="wallet")
    forged = ServiceTokens("another-secret-of-enough-length-0123456789", service_name="event").token()
    for _ in range(2):
        with pytest.raises(Unauthorized):
            callee.verify(forged)
    assert decodes == [forged, forged]  # checked every time, never cached


def test_the_cache_is_bounded() -> None:
    callee = ServiceTokens(SECRET, service_name="wallet", cache_size=2)
    tokens = [ServiceTokens(SECRET, service_name=name).token() for name in ("a", "b", "c")]
    for token in tokens:
        callee.verify(token)
    assert len(callee._verified._entries) == 2
    assert tokens[0] not in callee._verified._entries  # the oldest went first
