"""kong.yml itself: format, services, routes, the jwt split between public and private."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tablium_gateway.config import ConfigError, load_config, parse_config

from .conftest import DEV_KEYS, ISSUER

PRIVATE_ROUTES = {
    "player-me",
    "player-me-preferences",
    "player-admin-roles",
    "player-auth-session",
    "event-tournaments-create",
    "event-tournament-edit",
    "event-tournament-director",
    "event-tournament-decisions",
    "event-registrations",
    "event-registration-me",
    "event-purchases",
    "wallet-me",
    "wallet-limits",
    "wallet-admin",
    "lobby-tables-create",
    "lobby-table-close",
    "lobby-seats",
    "lobby-seat-me",
    "lobby-table-play",
    "lobby-ws-ticket",
    "lobby-private-tables",
    "lobby-table-members",
    "lobby-club-tables",
    "lobby-table-member-me",
    "lobby-table-member-decisions",
    "lobby-hands",
    "lobby-quick-seat",
    "lobby-waiting-lists",
    "lobby-waiting-list-leave",
    "blockchain-deposit-address",
    "blockchain-chain-status",
    "blockchain-withdrawals",
    "blockchain-withdrawal",
    "blockchain-withdrawal-pause",
    "club-clubs",
    "club-mine",
    "club-join",
    "club-club",
    "club-reads",
    "club-actions",
    "club-changes",
    "club-removals",
    "club-union",
    "club-union-actions",
    "club-union-share",
    "club-union-remove",
    "rakeback-statements",
    "rakeback-tiers-me",
}
PUBLIC_ROUTES = {
    "player-auth",
    "player-auth-jwks",
    "player-public-profile",
    "event-tournaments-list",
    "event-tournament-lobby",
    "lobby-tables-list",
    "lobby-table",
    "lobby-stats",
    # The table WebSocket: the lobby authenticates the handshake itself (the JWT, or a browser's ticket).
    "lobby-table-ws",
}
INTERNAL_SAMPLES = ("/internal", "/internal/", "/internal/holds", "/internal/v1/players/1")


@pytest.fixture(scope="module")
def kong(kong_yml: Path) -> dict[str, Any]:
    data = yaml.safe_load(kong_yml.read_text())
    assert isinstance(data, dict)
    return data


def _routes(kong: dict[str, Any]) -> list[dict[str, Any]]:
    return [route for service in kong["services"] for route in service.get("routes") or []]


def test_format_version(kong: dict[str, Any]) -> None:
    assert kong["_format_version"] == "3.0"


def test_every_service_has_a_url(kong: dict[str, Any]) -> None:
    names = [s["name"] for s in kong["services"]]
    assert names == ["player", "club", "rakeback", "event", "lobby", "wallet", "blockchain"]
    for service in kong["services"]:
        assert re.fullmatch(r"http://[a-z]+:8000", service["url"]), service


def test_every_route_has_paths_methods_and_keeps_its_path(kong: dict[str, Any]) -> None:
    routes = _routes(kong)
    assert routes
    for route in routes:
        assert route["paths"], route["name"]
        assert route["methods"], route["name"]
        assert route["strip_path"] is False, route["name"]
        assert "OPTIONS" in route["methods"], f"{route['name']}: CORS preflights need OPTIONS"
        for path in route["paths"]:
            assert path.lstrip("~").startswith("/api/v1/"), path


def test_no_path_reaches_internal(kong: dict[str, Any]) -> None:
    for route in _routes(kong):
        for path in route["paths"]:
            assert "internal" not in path, path
            if path.startswith("~"):
                pattern = re.compile("^" + path[1:])
                assert not any(pattern.match(sample) for sample in INTERNAL_SAMPLES), path
            else:
                assert not any(sample.startswith(path) for sample in INTERNAL_SAMPLES), path


def test_jwt_exactly_on_private_routes(kong: dict[str, Any]) -> None:
    with_jwt = {r["name"] for r in _routes(kong) if any(p["name"] == "jwt" for p in r.get("plugins") or [])}
    assert with_jwt == PRIVATE_ROUTES
    assert {r["name"] for r in _routes(kong)} == PRIVATE_ROUTES | PUBLIC_ROUTES
    assert not any(p["name"] == "jwt" for p in kong.get("plugins") or [])
    assert not any(p["name"] == "jwt" for s in kong["services"] for p in s.get("plugins") or [])
    for route in _routes(kong):
        for plugin in route.get("plugins") or []:
            if plugin["name"] == "jwt":
                assert plugin["config"]["key_claim_name"] == "iss"
                assert plugin["config"]["claims_to_verify"] == ["exp"]
                assert plugin["config"]["run_on_preflight"] is False


def test_consumer_key_is_the_player_issuer_and_key_is_the_dev_public_key(kong: dict[str, Any]) -> None:
    secrets = [s for c in kong["consumers"] for s in c.get("jwt_secrets") or []]
    assert len(secrets) == 1
    secret = secrets[0]
    assert secret["key"] == ISSUER
    assert secret["algorithm"] == "RS256"  # so the placeholder `secret` is never used
    assert secret["rsa_public_key"].strip() == (DEV_KEYS / "jwt-dev-public.pem").read_text().strip()


def test_global_plugins(kong: dict[str, Any]) -> None:
    plugins = {p["name"]: p.get("config", {}) for p in kong["plugins"]}
    assert set(plugins) == {
        "correlation-id",
        "cors",
        "rate-limiting",
        "request-size-limiting",
        "response-transformer",
        "prometheus",
    }
    assert plugins["correlation-id"]["header_name"] == "X-Request-ID"
    assert plugins["correlation-id"]["echo_downstream"] is True
    assert plugins["rate-limiting"]["limit_by"] == "ip"
    assert plugins["rate-limiting"]["policy"] == "local"
    assert plugins["request-size-limiting"] == {
        "allowed_payload_size": 64,
        "size_unit": "kilobytes",
        "require_content_length": False,
    }
    # Kong's own refusals carry it too (header_filter runs on them), not only the services' responses.
    assert plugins["response-transformer"] == {"add": {"headers": ["X-Content-Type-Options:nosniff"]}}


def test_dev_gateway_accepts_the_file(kong_yml: Path) -> None:
    config = load_config(kong_yml)
    private = {r.name for r in config.routes if r.is_private}
    assert private == PRIVATE_ROUTES
    assert set(config.credentials) == {ISSUER}


@pytest.mark.parametrize(
    "config",
    [
        {"remove": {"headers": ["Server"]}},
        {"add": {"json": ["injected:1"]}},
        {"replace": {"headers": ["Content-Type:text/plain"]}},
        {"add": {"headers": ["no-colon-here"]}},
    ],
)
def test_response_transformer_beyond_add_headers_is_refused(kong: dict[str, Any], config: dict[str, Any]) -> None:
    plugins = [p for p in kong["plugins"] if p["name"] != "response-transformer"]
    changed = {**kong, "plugins": [*plugins, {"name": "response-transformer", "config": config}]}
    with pytest.raises(ConfigError, match="response-transformer"):
        parse_config(changed)
