"""kong.yml against each service's real OpenAPI.

For every operation, a concrete request is made from its path template and routed with
the dev gateway's router (Kong's matching rules), so the check covers prefix and
regex paths and route priorities exactly as they behave:

* every public operation (outside /internal, /health, /ready, /metrics, /schema) is
  reached, on a route of its own service;
* an operation is behind the jwt plugin iff its OpenAPI security asks for BearerToken;
* the excluded operations are reached by no route;
* every kong route, for each of its methods (but OPTIONS, which the cors plugin
  answers), reaches at least one real operation; routes tagged ``websocket`` are exempt
  (OpenAPI has no WebSocket upgrade; the service authenticates those handshakes itself).
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from tablium_gateway.config import GatewayConfig, Route, load_config, parse_config
from tablium_gateway.router import Router

EXCLUDED_PREFIXES = ("/internal", "/health", "/ready", "/metrics", "/schema")
HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
SAMPLE_STRING = "3fa85f64-5717-4562-b3fc-2c963f66afa6"
SERVICES = ("player", "club", "rakeback", "event", "lobby", "wallet", "blockchain")


def _sample_path(template: str, operation: Mapping[str, Any]) -> str:
    path = template
    for parameter in operation.get("parameters") or []:
        if parameter.get("in") != "path":
            continue
        schema = parameter.get("schema") or {}
        value = "42" if schema.get("type") == "integer" else SAMPLE_STRING
        path = path.replace("{" + parameter["name"] + "}", value)
    while "{" in path:  # a parameter the operation did not describe
        start, end = path.index("{"), path.index("}")
        path = path[:start] + SAMPLE_STRING + path[end + 1 :]
    return path


def _requires_bearer(operation: Mapping[str, Any], default: list[dict[str, Any]]) -> bool:
    security = operation.get("security", default) or []
    return any("BearerToken" in requirement for requirement in security)


def route_problems(config: GatewayConfig, service: str, openapi: Mapping[str, Any]) -> list[str]:
    router = Router(config.routes)
    default_security = openapi.get("security") or []
    problems: list[str] = []
    reached: set[tuple[str, str]] = set()  # (route name, method)
    for template, item in (openapi.get("paths") or {}).items():
        for method in HTTP_METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            sample = _sample_path(template, operation)
            match = router.match(method.upper(), sample)
            label = f"{method.upper()} {template}"
            if template.startswith(EXCLUDED_PREFIXES):
                if match is not None:
                    problems.append(f"{label} must not be routed, but route {match.route.name} reaches it")
                continue
            if match is None:
                problems.append(f"{label} is reached by no kong route")
                continue
            route: Route = match.route
            if route.service.name != service:
                problems.append(f"{label} is routed to service {route.service.name}, not {service}")
                continue
            reached.add((route.name, method.upper()))
            private = _requires_bearer(operation, default_security)
            if private != route.is_private:
                want = "private (BearerToken)" if private else "public"
                has = "has" if route.is_private else "lacks"
                problems.append(f"{label} is {want} but route {route.name} {has} the jwt plugin")
    # WebSocket routes have no OpenAPI operation (the spec has no upgrade); kong.yml tags them.
    websockets = {
        raw_route["name"]
        for raw_service in config.raw.get("services") or []
        for raw_route in raw_service.get("routes") or []
        if "websocket" in (raw_route.get("tags") or [])
    }
    for route in config.routes:
        if route.service.name != service or route.name in websockets:
            continue
        for method in sorted((route.methods or frozenset(m.upper() for m in HTTP_METHODS)) - {"OPTIONS"}):
            if (route.name, method) not in reached:
                problems.append(f"route {route.name} {method} {list(route.paths)} reaches no operation")
    return problems


@pytest.fixture(scope="module")
def config(kong_yml: Path) -> GatewayConfig:
    return load_config(kong_yml)


@pytest.mark.parametrize("service", SERVICES)
def test_kong_routes_match_the_service_openapi(config: GatewayConfig, service: str) -> None:
    module = f"tablium_{service}.app"
    if importlib.util.find_spec(f"tablium_{service}") is None:
        pytest.skip(f"tablium_{service} is not installed yet")
    app = importlib.import_module(module).create_app()
    openapi = app.openapi_schema.to_schema()
    problems = route_problems(config, service, openapi)
    assert not problems, "\n".join(problems)


# -- the check itself, against a stand-in for the player service ------------------------------


def _stand_in_openapi(*, drop: str | None = None, make_public: str | None = None) -> dict[str, Any]:
    litestar = pytest.importorskip("litestar")
    from litestar import delete, get, patch, post, put

    bearer = [{"BearerToken": []}]
    service = [{"ServiceToken": []}]

    def secured(path: str) -> list[dict[str, list[str]]] | None:
        return None if path == make_public else bearer

    def op(decorator: Any, path: str, name: str, security: Any = None) -> Any:
        async def operation() -> None:
            return None

        return decorator(path, name=name, operation_id=name, security=security)(operation)

    handlers = [
        op(post, "/api/v1/auth/register", "register"),
        op(post, "/api/v1/auth/login", "login"),
        op(post, "/api/v1/auth/refresh", "refresh"),
        op(post, "/api/v1/auth/logout", "logout"),
        op(get, "/api/v1/auth/jwks", "jwks", security=[]),
        op(get, "/api/v1/auth/session", "session", bearer),
        op(get, "/api/v1/players/{player_id:uuid}", "profile"),
        op(get, "/api/v1/players/me", "me", secured("/api/v1/players/me")),
        op(patch, "/api/v1/players/me", "patch_me", bearer),
        op(get, "/api/v1/players/me/preferences", "prefs", bearer),
        op(put, "/api/v1/players/me/preferences", "put_prefs", bearer),
        op(post, "/api/v1/admin/players/{player_id:uuid}/roles", "roles", bearer),
        op(get, "/internal/players/{player_id:uuid}", "internal", service),
        op(delete, "/internal/players/{player_id:uuid}", "internal_delete", service),
        op(get, "/health", "health"),
    ]
    handlers = [h for h in handlers if h.paths != {drop}]
    app = litestar.Litestar(route_handlers=handlers)
    schema: dict[str, Any] = app.openapi_schema.to_schema()
    return schema


def test_check_passes_on_the_player_contract(config: GatewayConfig) -> None:
    assert route_problems(config, "player", _stand_in_openapi()) == []


def test_check_finds_an_operation_missing_from_kong(config: GatewayConfig) -> None:
    openapi = _stand_in_openapi()
    openapi["paths"]["/api/v1/players/me/avatar"] = {"put": {"security": [{"BearerToken": []}]}}
    assert route_problems(config, "player", openapi) == ["PUT /api/v1/players/me/avatar is reached by no kong route"]


def test_check_finds_a_route_without_an_operation(config: GatewayConfig) -> None:
    problems = route_problems(config, "player", _stand_in_openapi(drop="/api/v1/auth/jwks"))
    assert problems == ["route player-auth-jwks GET ['/api/v1/auth/jwks'] reaches no operation"]


def test_check_finds_a_public_operation_behind_jwt(config: GatewayConfig) -> None:
    problems = route_problems(config, "player", _stand_in_openapi(make_public="/api/v1/players/me"))
    assert problems == ["GET /api/v1/players/me is public but route player-me has the jwt plugin"]


def test_check_finds_a_private_operation_on_a_public_route(config: GatewayConfig) -> None:
    openapi = _stand_in_openapi()
    openapi["paths"]["/api/v1/auth/logout"]["post"]["security"] = [{"BearerToken": []}]
    problems = route_problems(config, "player", openapi)
    assert problems == ["POST /api/v1/auth/logout is private (BearerToken) but route player-auth lacks the jwt plugin"]


def test_check_finds_a_routed_internal_operation(config: GatewayConfig) -> None:
    openapi = _stand_in_openapi()
    openapi["paths"]["/internal/x"] = {"get": {}}
    leaky = parse_config(
        {
            **config.raw,
            "services": [
                {
                    **config.raw["services"][0],
                    "routes": [*config.raw["services"][0]["routes"], {"name": "leak", "paths": ["/internal"]}],
                }
            ],
        }
    )
    problems = route_problems(leaky, "player", openapi)
    assert "GET /internal/x must not be routed, but route leak reaches it" in problems
