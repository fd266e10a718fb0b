"""Kong's cors plugin: answers preflights itself, adds CORS headers to proxied responses."""

from __future__ import annotations

import re
from collections.abc import Mapping

from tablium_gateway.config import CorsConfig

_PLAIN_ORIGIN = re.compile(r"^[A-Za-z0-9.:/\-]+$")


class Cors:
    def __init__(self, conf: CorsConfig) -> None:
        self.conf = conf
        self._any_origin = "*" in conf.origins
        # Kong treats an origin that is not a plain string as a regex on the whole origin.
        self._exact = frozenset(o for o in conf.origins if _PLAIN_ORIGIN.match(o))
        self._patterns = tuple(re.compile(o) for o in conf.origins if o != "*" and o not in self._exact)
        self._methods = ",".join(conf.methods).encode()
        self._exposed = ",".join(conf.exposed_headers).encode() if conf.exposed_headers else None
        self._allow_headers = ",".join(conf.headers).encode() if conf.headers else None

    @staticmethod
    def is_preflight(method: str, headers: Mapping[str, str]) -> bool:
        return method == "OPTIONS" and "origin" in headers and "access-control-request-method" in headers

    def preflight_headers(self, headers: Mapping[str, str]) -> list[tuple[bytes, bytes]]:
        out = self._origin_headers(headers.get("origin"))
        allow_headers = self._allow_headers
        if allow_headers is None and "access-control-request-headers" in headers:
            allow_headers = headers["access-control-request-headers"].encode("latin-1")
        if allow_headers:
            out.append((b"access-control-allow-headers", allow_headers))
        out.append((b"access-control-allow-methods", self._methods))
        if self.conf.max_age is not None:
            out.append((b"access-control-max-age", str(self.conf.max_age).encode()))
        return out

    def response_headers(self, headers: Mapping[str, str]) -> list[tuple[bytes, bytes]]:
        out = self._origin_headers(headers.get("origin"))
        if self._exposed is not None:
            out.append((b"access-control-expose-headers", self._exposed))
        return out

    def _origin_headers(self, origin: str | None) -> list[tuple[bytes, bytes]]:
        allowed: str | None
        if self._any_origin and not (self.conf.credentials and origin):
            allowed = "*"
        elif origin is not None and (
            self._any_origin or origin in self._exact or any(p.fullmatch(origin) for p in self._patterns)
        ):
            allowed = origin
        else:
            allowed = None
        out: list[tuple[bytes, bytes]] = []
        if allowed is not None:
            out.append((b"access-control-allow-origin", allowed.encode("latin-1")))
            if self.conf.credentials:
                out.append((b"access-control-allow-credentials", b"true"))
        if allowed != "*":
            out.append((b"vary", b"Origin"))
        return out
