"""Kong's jwt plugin: find the token, find the credential by its key claim, check the
algorithm is the credential's, verify the signature, then the registered claims.

The messages and their order are Kong's, so a client reads the same reason from either
gateway (here as the detail of a problem+json body). One deliberate difference: when
``exp`` is in ``claims_to_verify`` a token without ``exp`` is rejected (Kong lets it
through); the platform never issues one.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from typing import Any
from urllib.parse import parse_qsl

import jwt

from tablium_gateway.config import JwtConfig, JwtCredential

_BEARER = re.compile(r"\s*[Bb]earer\s+(.+)")
_VERIFIED_CACHE_SIZE = 10_000
WWW_AUTHENTICATE = 'Bearer realm="service"'
WWW_AUTHENTICATE_INVALID = 'Bearer realm="service", error="invalid_token"'


@dataclass(frozen=True, slots=True)
class Authenticated:
    credential: JwtCredential
    claims: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Rejected:
    detail: str  # Kong's message
    www_authenticate: str


@dataclass(frozen=True, slots=True)
class _Verified:
    credential: JwtCredential
    claims: Mapping[str, Any]


class JwtAuthenticator:
    """Verifies tokens against the consumers' credentials. Signature checks are cached by
    token (a verified token stays verified); claims are checked on every request."""

    def __init__(self, credentials: Mapping[str, JwtCredential], clock: Callable[[], float] = time.time) -> None:
        self._credentials = credentials
        self._clock = clock
        self._verified: dict[tuple[str, str], _Verified] = {}

    def authenticate(self, conf: JwtConfig, headers: Mapping[str, str], query_string: str) -> Authenticated | Rejected:
        tokens = _find_tokens(conf, headers, query_string)
        if not tokens:
            return Rejected("Unauthorized", WWW_AUTHENTICATE)
        if len(tokens) > 1:
            return Rejected("Multiple tokens provided", WWW_AUTHENTICATE_INVALID)
        token = tokens.pop()
        cache_key = (conf.key_claim_name, token)
        verified = self._verified.get(cache_key)
        if verified is None:
            outcome = self._verify(conf, token)
            if isinstance(outcome, Rejected):
                return outcome
            verified = outcome
            if len(self._verified) >= _VERIFIED_CACHE_SIZE:
                del self._verified[next(iter(self._verified))]
            self._verified[cache_key] = verified
        errors = self._claim_errors(conf, verified.claims)
        if errors:
            # Kong answers {"exp": "token expired"}; as a problem detail: "exp: token expired".
            return Rejected("; ".join(f"{claim}: {error}" for claim, error in errors.items()), WWW_AUTHENTICATE_INVALID)
        return Authenticated(verified.credential, verified.claims)

    def _verify(self, conf: JwtConfig, token: str) -> _Verified | Rejected:
        try:
            header = jwt.get_unverified_header(token)
            claims = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            return Rejected(f"Bad token; {exc}", WWW_AUTHENTICATE_INVALID)
        key_name = conf.key_claim_name
        key = claims.get(key_name, header.get(key_name))
        if key is None:
            return Rejected(f"No mandatory '{key_name}' in claims", WWW_AUTHENTICATE_INVALID)
        if not isinstance(key, str) or key == "":
            return Rejected(f"Invalid '{key_name}' in claims", WWW_AUTHENTICATE_INVALID)
        credential = self._credentials.get(key)
        if credential is None:
            return Rejected(f"No credentials found for given '{key_name}'", WWW_AUTHENTICATE_INVALID)
        # Checked before the signature, with the credential's algorithm only: this is
        # what stops alg=none and HS256-signed-with-the-public-key tokens.
        if header.get("alg") != credential.algorithm:
            return Rejected("Invalid algorithm", WWW_AUTHENTICATE_INVALID)
        try:
            jwt.decode(
                token,
                credential.public_key,
                algorithms=[credential.algorithm],
                options={
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                    "verify_aud": False,
                    "verify_iss": False,
                },
            )
        except jwt.InvalidSignatureError:
            return Rejected("Invalid signature", WWW_AUTHENTICATE_INVALID)
        except jwt.PyJWTError as exc:
            return Rejected(f"Bad token; {exc}", WWW_AUTHENTICATE_INVALID)
        return _Verified(credential, claims)

    def _claim_errors(self, conf: JwtConfig, claims: Mapping[str, Any]) -> dict[str, str]:
        errors: dict[str, str] = {}
        now = self._clock()
        for name in sorted(conf.claims_to_verify):
            value = claims.get(name)
            if value is None and name == "exp":
                errors[name] = "must be present"
            elif value is None:
                continue
            elif not isinstance(value, int | float) or isinstance(value, bool):
                errors[name] = "must be a number"
            elif name == "exp" and value <= now:
                errors[name] = "token expired"
            elif name == "nbf" and value > now:
                errors[name] = "token not valid yet"
        if not errors and conf.maximum_expiration > 0:
            exp = claims["exp"]
            if exp > now + conf.maximum_expiration:
                errors["exp"] = "exceeds maximum allowed expiration"
        return errors


def _find_tokens(conf: JwtConfig, headers: Mapping[str, str], query_string: str) -> set[str]:
    tokens: set[str] = set()
    if conf.uri_param_names and query_string:
        for name, value in parse_qsl(query_string, keep_blank_values=False):
            if name in conf.uri_param_names:
                tokens.add(value)
    if conf.cookie_names and "cookie" in headers:
        cookies: SimpleCookie = SimpleCookie()
        with contextlib.suppress(CookieError):
            cookies.load(headers["cookie"])
        for cookie_name in conf.cookie_names:
            if cookie_name in cookies:
                tokens.add(cookies[cookie_name].value)
    for header_name in conf.header_names:
        header_value = headers.get(header_name)
        if header_value:
            m = _BEARER.match(header_value)
            if m is not None:
                tokens.add(m.group(1).strip())
    return tokens
