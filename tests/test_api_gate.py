"""The API gate: schemathesis against every service's OpenAPI, on live processes over real HTTP.

Every operation of every service (``SERVICES``: a new service is in the gate when it exists) is
called with data generated from its schema, valid and invalid, with a player's, an admin's or a
service's token as the route declares. Each response must be no 5xx, a documented status, of the
documented content type, and conform to the documented schema. Bounded and reproducible: a fixed
number of examples per operation (``TABLIUM_GATE_EXAMPLES``), derandomized, no deadline.

Also, for every operation that takes a body: invalid UTF-8, a NUL and a non-JSON content type are
refused (400, 400, 415) before any handler runs, and a token whose subject is not a player id is a 401.
"""

from __future__ import annotations

import functools
import itertools
import os
import socket
import subprocess
import time
import uuid
from typing import Any

import httpx
import jwt
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, Verbosity, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import (  # resolved by name from schemathesis' check registry
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tablium_kit.auth import ServiceTokens

from .conftest import SERVICES, LiveServices, openapi_document

EXAMPLES = int(os.environ.get("TABLIUM_GATE_EXAMPLES", "25"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
_METHODS = ("get", "put", "post", "delete", "patch")
Tokens = dict[str, dict[str, str]]  # caller kind -> its Authorization header


def _callers(operation: dict[str, Any]) -> list[str]:
    security = operation.get("security", [])
    schemes = {name for requirement in security for name in requirement}
    if "ServiceToken" in schemes:
        # The first of the services the route names (the kit enforces exactly that list).
        return [f"service:{min(name for r in security for name in r.get('ServiceToken', []))}"]
    if "BearerToken" in schemes:
        return ["player", "admin"]
    return ["anonymous"]


def _operations() -> list[Any]:
    cases = []
    for service in SERVICES:
        for path, item in openapi_document(service)["paths"].items():
            for method in _METHODS:
                if method in item:
                    for caller in _callers(item[method]):
                        label = f"{service} {method.upper()} {path} as {caller}"
                        cases.append(pytest.param(service, method.upper(), path, caller, id=label))
    return cases


def _operation(service: str, method: str, path: str) -> dict[str, Any]:
    operation: dict[str, Any] = openapi_document(service)["paths"][path][method.lower()]
    return operation


OPERATIONS = _operations()
# With the most privileged caller, so that guards let the request through to its body.
WITH_BODY = [p for p in OPERATIONS if "requestBody" in _operation(*p.values[:3]) and p.values[3] != "player"]
SECURED = [param for param in OPERATIONS if param.values[3] == "player" or param.values[3].startswith("service:")]
INTERNAL = [param for param in OPERATIONS if param.values[3].startswith("service:")]


def _concrete(service: str, method: str, path: str) -> str:
    """``path`` with well-formed values for its parameters, so the request gets past routing."""
    for parameter in _operation(service, method, path).get("parameters", []):
        if parameter["in"] == "path":
            schema = parameter.get("schema", {})
            value = "1" if schema.get("type") == "integer" else "00000000-0000-4000-8000-000000000000"
            path = path.replace("{" + parameter["name"] + "}", value)
    return path


@functools.cache
def _live_schema(url: str) -> Any:
    return schemathesis.openapi.from_dict(httpx.get(f"{url}/schema/openapi.json").raise_for_status().json())


def _headers(live: LiveServices, tokens: Tokens, service: str, caller: str) -> dict[str, str]:
    """The caller's ``Authorization`` header for a call to ``service`` (none for an anonymous caller)."""
    if caller.startswith("service:"):
        return {"Authorization": f"Bearer {live.tokens(caller.removeprefix('service:')).token(service)}"}
    return tokens.get(caller, {})


def test_the_live_documents_are_the_ones_built_in_process(live_services: LiveServices) -> None:
    for service in SERVICES:
        live = httpx.get(f"{live_services.urls[service]}/schema/openapi.json").raise_for_status().json()
        assert live == openapi_document(service), service


def _wallet_knows(database_url: str, player_id: str) -> None:
    url = database_url.replace("postgresql+asyncpg://", "postgresql://")
    # psql quotes the id itself (:'id'), read from standard input, where variables are interpolated.
    sql = b"INSERT INTO players (id) VALUES (:'id') ON CONFLICT DO NOTHING;"
    command = ["psql", "-q", "-v", "ON_ERROR_STOP=1", "-v", f"id={uuid.UUID(player_id)}", url]
    subprocess.run(command, input=sql, check=True, capture_output=True)


@pytest.fixture(scope="module")
def known_ids(live_services: LiveServices, live_tokens: Tokens) -> dict[str, list[str]]:
    """Path parameter name -> ids of things that exist, so some calls get past the 404.

    Best effort, by name: what a seeding call could not make is left to random ids. A draft and an
    open, paid tournament (a freeroll's registration is issue 10's item 3), and a funded player.
    """
    urls, admin = live_services.urls, live_tokens["admin"]
    known: dict[str, list[str]] = {}
    with httpx.Client(timeout=30) as client:
        me = client.get(f"{urls['player']}/api/v1/players/me", headers=live_tokens["player"])
        if me.status_code == 200:
            known["player_id"] = [me.json()["id"]]
            if "wallet" in urls:
                # The live services consume no events, so the wallet learns of the player here, as its
                # player.registered handler would have told it; it credits only players it knows.
                _wallet_knows(live_services.env["TABLIUM_WALLET_DATABASE_URL"], known["player_id"][0])
                credit = {"player_id": known["player_id"][0], "asset": "USDT", "amount": "1000000000", "reason": "gate"}
                funded = client.post(f"{urls['wallet']}/api/v1/admin/wallet/credit", json=credit, headers=admin)
                assert funded.status_code in (200, 201), funded.text
        if "event" in urls:
            tournaments = f"{urls['event']}/api/v1/tournaments"
            for body, opened in (({"name": "gate draft"}, False), ({"name": "gate open", "buy_in": "10"}, True)):
                created = client.post(tournaments, json=body, headers=admin)
                if created.status_code == 201:
                    tournament_id = created.json()["id"]
                    if opened:
                        client.post(f"{tournaments}/{tournament_id}/open", headers=admin)
                    known.setdefault("tournament_id", []).append(tournament_id)
    return known


@pytest.mark.parametrize(("service", "method", "path", "caller"), OPERATIONS)
def test_schemathesis(
    live_services: LiveServices,
    live_tokens: Tokens,
    known_ids: dict[str, list[str]],
    service: str,
    method: str,
    path: str,
    caller: str,
) -> None:
    url = live_services.urls[service]
    operation = _live_schema(url)[path][method]
    strategies = [
        operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
        operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
    ]
    names = [p["name"] for p in _operation(service, method, path).get("parameters", []) if p["in"] == "path"]
    if names and all(name in known_ids for name in names):
        for values in itertools.product(*(known_ids[name] for name in names)):
            known = dict(zip(names, values, strict=True))
            strategies.append(operation.as_strategy(generation_mode=GenerationMode.POSITIVE, path_parameters=known))
    strategy = st.one_of(strategies)
    headers = _headers(live_services, live_tokens, service, caller)

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],  # a failure is reported as found: shrinking costs minutes
        suppress_health_check=list(HealthCheck),
        verbosity=Verbosity.quiet,
    )
    @given(case=strategy)
    def check(case: Any) -> None:
        response = case.call(base_url=url, headers=headers, timeout=30)
        case.validate_response(response, checks=CHECKS)

    check()


@pytest.mark.parametrize(("service", "method", "path", "caller"), WITH_BODY)
def test_bad_bodies_are_refused_before_any_handler(
    live_services: LiveServices,
    live_tokens: Tokens,
    service: str,
    method: str,
    path: str,
    caller: str,
) -> None:
    url = live_services.urls[service] + _concrete(service, method, path)
    # The wallet's internal writes need an idempotency key before anything else.
    headers = {
        **_headers(live_services, live_tokens, service, caller),
        "Content-Type": "application/json",
        "Idempotency-Key": "gate",
    }
    for body in (b'{"x": "\xff"}', b'{"x": "\\u0000"}', b'{"x": 1e3}'):
        response = httpx.request(method, url, content=body, headers=headers)
        assert response.status_code == 400, (body, response.text)
        assert response.headers["content-type"] == "application/problem+json"
    plain = httpx.request(method, url, content=b"{}", headers={**headers, "Content-Type": "text/plain"})
    assert plain.status_code == 415, plain.text


@pytest.fixture(scope="module")
def not_a_player(live_services: LiveServices) -> Tokens:
    """Validly signed tokens whose claims have the wrong types (the player's own key signs them)."""
    from tablium_player.app import signing_keys
    from tablium_player.settings import PlayerSettings

    keys = signing_keys(PlayerSettings.from_env("player", live_services.env))
    now = int(time.time())
    base = {"iss": "tablium-player", "aud": "tablium", "iat": now, "exp": now + 300, "typ": "access"}
    bad = {
        "sub": {"sub": "p-1", "roles": ["player"]},
        "roles": {"sub": str(uuid.uuid4()), "roles": "admin"},
        "exp": {"sub": str(uuid.uuid4()), "roles": ["player"], "exp": str(now + 300)},
    }
    return {
        name: {
            "Authorization": "Bearer " + jwt.encode({**base, **claims}, keys.private_key, "RS256", {"kid": keys.kid})
        }
        for name, claims in bad.items()
    }


@pytest.mark.parametrize(("service", "method", "path", "caller"), [p for p in SECURED if p.values[3] == "player"])
def test_tokens_with_claims_of_the_wrong_type_are_401(
    live_services: LiveServices,
    not_a_player: dict[str, dict[str, str]],
    service: str,
    method: str,
    path: str,
    caller: str,
) -> None:
    url = live_services.urls[service] + _concrete(service, method, path)
    for claim, headers in not_a_player.items():
        response = httpx.request(method, url, headers=headers)
        assert response.status_code == 401, (claim, response.text)


# Every key a service could sign with but the right one, over the live processes (issue 11, item 9).
OLD_SHARED_SECRET = "dev-only-service-token-secret-change-me-0123456789"


@pytest.mark.parametrize(("service", "method", "path", "caller"), INTERNAL)
def test_internal_routes_refuse_every_service_but_those_they_name(
    live_services: LiveServices, service: str, method: str, path: str, caller: str
) -> None:
    url = live_services.urls[service] + _concrete(service, method, path)
    named = {name for r in _operation(service, method, path)["security"] for name in r.get("ServiceToken", [])}
    allowed = live_services.tokens(caller.removeprefix("service:"))
    now = int(time.time())
    old = {"iss": "tablium-service", "aud": "tablium-internal", "sub": f"service:{allowed.service_name}"}
    forged = {
        # One the route doesn't name: refused with its own valid token.
        "another service": (live_services.tokens(min(set(SERVICES) - named)).token(service), 403),
        # The route's own caller: for another service, with its development key, and the old shared secret.
        "another audience": (allowed.token("gate"), 401),
        "a development key": (ServiceTokens.development(allowed.service_name).token(service), 401),
        "the old shared secret": (jwt.encode({**old, "iat": now, "exp": now + 60}, OLD_SHARED_SECRET, "HS256"), 401),
    }
    for name, (token, status) in forged.items():
        headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": "gate", "Content-Type": "application/json"}
        response = httpx.request(method, url, headers=headers, content=b"{}")
        assert response.status_code == status, (name, response.text)
        assert response.headers["content-type"] == "application/problem+json"


def _raw_status(url: str, request: bytes) -> int:
    """The status a server answers to ``request`` as sent, byte for byte (clients refuse to send such headers)."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(request)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    return int(answer.split(b" ", 2)[1])


@pytest.mark.parametrize("service", SERVICES)
def test_control_characters_in_path_query_and_headers_are_refused(live_services: LiveServices, service: str) -> None:
    url = live_services.urls[service]
    for target in ("/api/v1/x%00y", "/api/v1/x?q=a%00b", "/api/v1/x?q=%C2%85", "/api/v1/x%0A"):
        response = httpx.get(url + target)
        assert response.status_code == 400, (target, response.text)
        assert response.headers["content-type"] == "application/problem+json"
    # Header values: the HTTP server's parser refuses them before the application runs (inputs.py).
    for value in (b"a\x00b", b"a\x01b", b"a\x7fb"):
        request = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Request-ID: " + value + b"\r\nConnection: close\r\n\r\n"
        assert _raw_status(url, request) == 400, value
    assert _raw_status(url, b"GET /health HTTP/1.1\r\nHost: x\r\nX-Thing: a\tb\r\nConnection: close\r\n\r\n") == 200
