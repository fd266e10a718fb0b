"""Verified tokens are remembered, but never past their expiry and never across token kinds."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tablium_kit import tokens
from tablium_kit.auth import LEEWAY_S, Principal, ServiceTokens, ServiceTokenVerifier, ServiceTrust, VerifiedTokens
from tablium_kit.errors import Unauthorized


def wallet(cache_size: int = 1_000) -> ServiceTokenVerifier:
    """The wallet verifying service tokens, trusting the development keys (as in tests)."""
    return ServiceTokenVerifier("wallet", ServiceTrust({}), cache_size=cache_size)


def bearer(token: str) -> bytes:
    """The Authorization header value a client sends with ``token``."""
    return f"Bearer {token}".encode()


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Counts pyjwt verifications done by the kit."""
    calls: list[str] = []
    real = jwt.decode

    def counting(token: str, *args: Any, **kwargs: Any) -> Any:
        calls.append(token)
        return real(token, *args, **kwargs)

    monkeypatch.setattr(jwt, "decode", counting)
    return calls


def test_a_service_token_is_verified_once_then_answered_from_the_cache(decodes: list[str]) -> None:
    caller = ServiceTokens.development("event")
    callee = wallet()
    token = caller.token("wallet")
    for _ in range(3):
        principal = callee.verify(bearer(token))
        assert principal.subject == "service:event"
        assert principal.kind == "service"
    assert decodes == [token]


def test_a_cached_service_token_is_not_answered_past_its_expiry(
    monkeypatch: pytest.MonkeyPatch, decodes: list[str]
) -> None:
    callee = wallet()
    token = ServiceTokens.development("event", ttl_seconds=60).token("wallet")
    callee.verify(bearer(token))
    callee.verify(bearer(token))
    assert decodes == [token]
    # The kit's clock passes the expiry (pyjwt keeps its own clock, so the token verifies again
    # there): the cache must not answer, the token goes back through full verification.
    later = time.time() + 60 + LEEWAY_S + 1
    monkeypatch.setattr(tokens.time, "time", lambda: later)
    callee.verify(bearer(token))
    assert decodes == [token, token]


def test_a_cached_entry_expires_with_the_token() -> None:
    cache = VerifiedTokens()
    principal = Principal(subject="service:event", kind="service")
    cache.put(b"Bearer t", principal, expires_at=time.time() - LEEWAY_S - 1)
    assert cache.get(b"Bearer t") is None
    cache.put(b"Bearer t", principal, expires_at=time.time() + 60)
    assert cache.get(b"Bearer t") == principal


def test_refused_tokens_are_not_remembered(decodes: list[str]) -> None:
    callee = wallet()
    # Another key under the event's development kid: the signature doesn't verify.
    forged = ServiceTokens("event", Ed25519PrivateKey.generate(), kid="dev:event").token("wallet")
    for _ in range(2):
        with pytest.raises(Unauthorized):
            callee.verify(bearer(forged))
    assert decodes == [forged, forged]  # checked every time, never cached


def test_the_cache_is_bounded() -> None:
    callee = wallet(cache_size=2)
    tokens = [ServiceTokens.development(name).token("wallet") for name in ("a", "b", "c")]
    for token in tokens:
        callee.verify(bearer(token))
    assert len(callee._verified._entries) == 2
    assert tokens[0] not in callee._verified._entries  # the oldest went first


def test_a_header_is_parsed_and_verified_once_and_a_bad_one_never_remembered(decodes: list[str]) -> None:
    callee = wallet()
    token = ServiceTokens.development("event").token("wallet")
    for header in (bearer(token), bearer(token), f"bearer  {token} ".encode()):
        assert callee.verify(header).subject == "service:event"
    # The same header is answered from the cache; another spelling of it is verified once more.
    assert decodes == [token, token]
    for bad in (None, b"", b"Basic abc", b"Bearer ", b"Bearer"):
        with pytest.raises(Unauthorized):
            callee.verify(bad)
    assert len(callee._verified._entries) == 2  # the two good spellings; nothing refused was stored
