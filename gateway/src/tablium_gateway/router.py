"""Kong's route matching (router_flavor traditional_compatible), for methods and paths.

Kong 3.x orders every (route, path) pair by a priority built from, most significant
first: how many kinds of condition the route has (methods, hosts, headers, snis,
paths), then regex paths before prefix paths, then ``regex_priority`` among regex
paths, then the length of the prefix among prefix paths. Regex paths (``~/...``) are
anchored at the start (``^`` is prepended, as Kong does); prefix paths are plain
string prefixes. Pairs of equal priority keep their order in kong.yml (Kong leaves
that case undefined). Matching runs on the normalized path, which is also what is
sent upstream, so the service never sees a path the router did not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tablium_gateway.config import Route

_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_HEX = frozenset(b"0123456789abcdefABCDEF")
_CACHE_SIZE = 4096


@dataclass(frozen=True, slots=True)
class RouteMatch:
    route: Route
    matched: str  # the part of the path the route's path matched (what strip_path removes)


@dataclass(frozen=True, slots=True)
class _Candidate:
    route: Route
    prefix: str | None
    regex: re.Pattern[str] | None
    priority: tuple[int, int, int, int]


class Router:
    def __init__(self, routes: tuple[Route, ...]) -> None:
        candidates: list[_Candidate] = []
        for route in routes:
            weight = (1 if route.methods else 0) + 1  # methods, paths (no hosts/headers/snis supported)
            for path in route.paths:
                if path.startswith("~"):
                    regex = re.compile("^" + path[1:])
                    candidates.append(_Candidate(route, None, regex, (weight, 1, route.regex_priority, 0)))
                else:
                    candidates.append(_Candidate(route, path, None, (weight, 0, 0, len(path))))
        # sorted() is stable: equal priorities keep the kong.yml order.
        self._candidates = tuple(sorted(candidates, key=lambda c: c.priority, reverse=True))
        self._cache: dict[tuple[str, str], RouteMatch | None] = {}

    def match(self, method: str, path: str) -> RouteMatch | None:
        key = (method, path)
        try:
            return self._cache[key]
        except KeyError:
            pass
        found = self._match(method, path)
        if len(self._cache) >= _CACHE_SIZE:
            # Paths carry ids, so the cache is bounded; dropping the oldest entry is enough.
            del self._cache[next(iter(self._cache))]
        self._cache[key] = found
        return found

    def _match(self, method: str, path: str) -> RouteMatch | None:
        for candidate in self._candidates:
            methods = candidate.route.methods
            if methods is not None and method not in methods:
                continue
            if candidate.prefix is not None:
                if path.startswith(candidate.prefix):
                    return RouteMatch(candidate.route, candidate.prefix)
            elif candidate.regex is not None:
                m = candidate.regex.match(path)
                if m is not None:
                    return RouteMatch(candidate.route, m.group(0))
        return None


def normalize_path(raw: str) -> str | None:
    """Kong-style normalization: decode percent-escapes of unreserved characters,
    upper-case the others, merge slashes and resolve ``.``/``..`` segments.

    Returns None for a path that is not a valid absolute path.
    """
    if not raw.startswith("/"):
        return None
    if "%" in raw:
        decoded = _decode_unreserved(raw)
        if decoded is None:
            return None
        raw = decoded
    if "//" not in raw and "/." not in raw:
        return raw
    segments: list[str] = []
    for segment in raw.split("/")[1:]:
        if segment in ("", "."):
            continue
        if segment == "..":
            if segments:
                segments.pop()
            continue
        segments.append(segment)
    trailing = "/" if raw.endswith(("/", "/.", "/..")) and segments else ""
    return "/" + "/".join(segments) + trailing


def _decode_unreserved(raw: str) -> str | None:
    data = raw.encode("utf-8")
    out = bytearray()
    i = 0
    while i < len(data):
        byte = data[i]
        if byte == 0x25:  # %
            if i + 2 >= len(data) or data[i + 1] not in _HEX or data[i + 2] not in _HEX:
                return None
            value = int(data[i + 1 : i + 3], 16)
            if value in _UNRESERVED:
                out.append(value)
            else:
                out += b"%" + data[i + 1 : i + 3].upper()
            i += 3
        else:
            out.append(byte)
            i += 1
    return out.decode("utf-8", errors="strict")


def upstream_path(service_path: str | None, request_path: str, matched: str, strip_path: bool) -> str:
    """Kong's path_handling v0: service path and (stripped) request path joined as segments."""
    rest = request_path[len(matched) :] if strip_path else request_path
    if not service_path or service_path == "/":
        return rest if rest.startswith("/") else "/" + rest
    if rest in ("", "/"):
        return service_path
    return service_path.rstrip("/") + "/" + rest.lstrip("/")
