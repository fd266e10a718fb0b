"""Kong's route priorities and path normalization, on small configs."""

from __future__ import annotations

from typing import Any

import pytest

from tablium_gateway.config import ConfigError, parse_config
from tablium_gateway.router import Router, normalize_path, upstream_path


def _router(*routes: dict[str, Any]) -> Router:
    config = parse_config(
        {"_format_version": "3.0", "services": [{"name": "s", "url": "http://s:8000", "routes": list(routes)}]}
    )
    return Router(config.routes)


def _name(router: Router, method: str, path: str) -> str | None:
    match = router.match(method, path)
    return match.route.name if match else None


def test_longest_prefix_wins() -> None:
    router = _router({"name": "short", "paths": ["/a"]}, {"name": "long", "paths": ["/a/b"]})
    assert _name(router, "GET", "/a/b/c") == "long"
    assert _name(router, "GET", "/a/c") == "short"
    assert _name(router, "GET", "/ab") == "short"  # Kong prefixes are plain string prefixes
    assert _name(router, "GET", "/b") is None


def test_regex_paths_come_before_prefix_paths_then_by_regex_priority() -> None:
    router = _router(
        {"name": "prefix", "paths": ["/players/me"]},
        {"name": "any", "paths": ["~/players/[^/]+$"], "regex_priority": 0},
        {"name": "me", "paths": ["~/players/me$"], "regex_priority": 5},
    )
    assert _name(router, "GET", "/players/me") == "me"
    assert _name(router, "GET", "/players/you") == "any"
    assert _name(router, "GET", "/players/me/x") == "prefix"


def test_routes_with_methods_come_before_routes_without() -> None:
    router = _router(
        {"name": "any-method", "paths": ["~/x/.*"], "regex_priority": 100},
        {"name": "get-only", "paths": ["/x"], "methods": ["GET"]},
    )
    assert _name(router, "GET", "/x/1") == "get-only"
    assert _name(router, "POST", "/x/1") == "any-method"


def test_regex_is_anchored_at_the_start_only() -> None:
    router = _router({"name": "r", "paths": [r"~/v\d+/thing"]})
    assert _name(router, "GET", "/v1/thing/more") == "r"
    assert _name(router, "GET", "/api/v1/thing") is None


def test_unsupported_route_fields_are_refused() -> None:
    with pytest.raises(ConfigError, match="hosts"):
        _router({"name": "h", "paths": ["/a"], "hosts": ["example.com"]})
    with pytest.raises(ConfigError, match="not implemented"):
        _router({"name": "p", "paths": ["/a"], "plugins": [{"name": "acl"}]})


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("/a/b", "/a/b"),
        ("/a//b/", "/a/b/"),
        ("/a/./b/../c", "/a/c"),
        ("/a/%2e%2E/b", "/b"),
        ("/../../x", "/x"),
        ("/a/%41%7e", "/a/A~"),
        ("/a/%2fb", "/a/%2Fb"),  # an encoded slash stays encoded: it is not a separator
        ("/a/%zz", None),
        ("/a/%4", None),
        ("a", None),
    ],
)
def test_normalize_path(raw: str, normalized: str | None) -> None:
    assert normalize_path(raw) == normalized


@pytest.mark.parametrize(
    ("service_path", "path", "matched", "strip", "expected"),
    [
        (None, "/api/v1/x", "/api/v1", False, "/api/v1/x"),
        (None, "/edge/x", "/edge", True, "/x"),
        (None, "/edge", "/edge", True, "/"),
        ("/s", "/fv0/req", "/fv0", False, "/s/fv0/req"),
        ("/s", "/fv0/req", "/fv0", True, "/s/req"),
        ("/s", "/fv0", "/fv0", True, "/s"),
    ],
)
def test_upstream_path_v0(service_path: str | None, path: str, matched: str, strip: bool, expected: str) -> None:
    assert upstream_path(service_path, path, matched, strip) == expected
