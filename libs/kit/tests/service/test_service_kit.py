"""What every service gets from the kit: errors, auth, health, metrics, request ids."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from litestar import Controller, Request, WebSocket, get, websocket
from litestar.exceptions import ImproperlyConfiguredException, WebSocketDisconnect
from litestar.testing import AsyncTestClient, TestClient

from tablium_kit.app import ServiceDefinition, create_service_app
from tablium_kit.auth import BEARER, ServiceTokens, StaticKeySource, authenticated, caller, requires_roles
from tablium_kit.settings import ServiceSettings

KID = "test-key"  # the key id the sample service's conftest signs with

P9 = "00000000-0000-4000-8000-000000000009"
ALICE = "00000000-0000-4000-8000-00000000a11c"
BOB = "00000000-0000-4000-8000-000000000b0b"
WS_PLAYER = "00000000-0000-4000-8000-0000000000a5"


def is_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


async def test_public_route_needs_no_token(sample: AsyncTestClient) -> None:
    response = await sample.get("/api/v1/sample/public")
    assert response.json() == {"hello": "world"}


async def test_private_route_needs_a_valid_token(sample: AsyncTestClient, make_token: Callable[..., str]) -> None:
    is_problem(await sample.get("/api/v1/sample/private"), 401)
    ok = await sample.get("/api/v1/sample/private", headers={"Authorization": f"Bearer {make_token(P9)}"})
    assert ok.json() == {"subject": P9, "roles": ["player"]}
    is_problem(
        await sample.get("/api/v1/sample/private", headers={"Authorization": f"Bearer {make_token(exp=1)}"}), 401
    )


async def test_the_caller_is_who_the_token_says_and_nobody_on_public_routes(
    sample: AsyncTestClient, make_token: Callable[..., str]
) -> None:
    is_problem(await sample.get("/api/v1/sample/me"), 401)
    alice = {"Authorization": f"Bearer {make_token(ALICE)}"}
    bob = {"Authorization": f"Bearer {make_token(BOB)}"}
    assert (await sample.get("/api/v1/sample/me", headers=alice)).json() == {"subject": ALICE}
    assert (await sample.get("/api/v1/sample/me", headers=bob)).json() == {"subject": BOB}
    # A token sent to a public route authenticates nobody, and no earlier request's caller lingers.
    is_problem(await sample.get("/api/v1/sample/anyone", headers=alice), 401)
    is_problem(await sample.get("/api/v1/sample/anyone"), 401)


async def test_role_guard(sample: AsyncTestClient, make_token: Callable[..., str]) -> None:
    player = {"Authorization": f"Bearer {make_token()}"}
    director = {"Authorization": f"Bearer {make_token(roles=['player', 'tournament_director'])}"}
    # Guards run before the kit's before_request hook; they authenticate first, so no token is a 401.
    is_problem(await sample.get("/api/v1/sample/directors"), 401)
    is_problem(await sample.get("/api/v1/sample/directors", headers={"Authorization": "Bearer junk"}), 401)
    is_problem(await sample.get("/api/v1/sample/directors", headers=player), 403)
    assert (await sample.get("/api/v1/sample/directors", headers=director)).json() == {"ok": True}


async def test_internal_routes_take_only_service_tokens(
    sample: AsyncTestClient, make_token: Callable[..., str]
) -> None:
    # A user token, even a valid one, is not a service identity.
    is_problem(await sample.get("/internal/sample/who", headers={"Authorization": f"Bearer {make_token()}"}), 401)
    # In tests the sample trusts the development keys (its trust store is empty); see test_service_identity.py
    # for the production configuration.
    wallet = ServiceTokens.development("wallet").token("sample")
    ok = await sample.get("/internal/sample/who", headers={"Authorization": f"Bearer {wallet}"})
    assert ok.json() == {"caller": "service:wallet"}
    lobby = ServiceTokens.development("lobby").token("sample")
    is_problem(await sample.get("/internal/sample/who", headers={"Authorization": f"Bearer {lobby}"}), 403)
    elsewhere = ServiceTokens.development("wallet").token("lobby")
    is_problem(await sample.get("/internal/sample/who", headers={"Authorization": f"Bearer {elsewhere}"}), 401)


async def test_errors_are_problem_json(sample: AsyncTestClient) -> None:
    body = is_problem(await sample.post("/api/v1/sample/seats", json={"table": "full", "seat": 3}), 409)
    assert body["detail"] == "table is full"
    assert body["type"] == "urn:tablium:problem:conflict"
    body = is_problem(await sample.post("/api/v1/sample/seats", json={"table": "t", "seat": 11}), 400)
    assert "seat" in str(body["errors"])
    is_problem(await sample.post("/api/v1/sample/seats", json={"table": "t", "seat": 1, "chips": 5}), 400)
    is_problem(
        await sample.post("/api/v1/sample/seats", content=b"{", headers={"content-type": "application/json"}), 400
    )


async def test_unexpected_errors_are_500_problems_without_internals(sample: AsyncTestClient) -> None:
    body = is_problem(await sample.get("/api/v1/sample/boom"), 500)
    assert "hunter2" not in str(body)
    assert "RuntimeError" not in str(body)


async def test_health_ready_metrics(sample: AsyncTestClient) -> None:
    assert (await sample.get("/health")).json() == {"status": "ok"}
    ready = await sample.get("/ready")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "up", "redis": "up"}  # no messaging in this sample
    await sample.get("/api/v1/sample/public")
    metrics = (await sample.get("/metrics")).text
    assert 'tablium_requests_total{app_name="tablium-sample"' in metrics
    assert 'path="/api/v1/sample/public"' in metrics
    assert "tablium_request_duration_seconds_bucket" in metrics


async def test_request_id_is_echoed_or_made(sample: AsyncTestClient) -> None:
    given = await sample.get("/api/v1/sample/public", headers={"X-Request-ID": "req-123"})
    assert given.headers["x-request-id"] == "req-123"
    made = await sample.get("/api/v1/sample/public")
    assert len(made.headers["x-request-id"]) == 32


async def test_requests_matching_no_route_are_answered_through_the_kit_and_counted_as_one_series(
    sample: AsyncTestClient,
) -> None:
    for path in ("/api/v1/nothing-here", "/api/v1/sample/public/../../x", "/wp-login.php"):
        missing = await sample.get(path, headers={"X-Request-ID": "req-404"})
        is_problem(missing, 404)
        assert missing.headers["x-request-id"] == "req-404"
    wrong_method = await sample.delete("/api/v1/sample/public")
    is_problem(wrong_method, 405)
    assert len(wrong_method.headers["x-request-id"]) == 32
    metrics = (await sample.get("/metrics")).text
    assert 'method="GET",path="<unmatched>",status_code="404"}' in metrics
    assert 'method="DELETE",path="<unmatched>",status_code="405"}' in metrics
    assert "wp-login" not in metrics  # paths nobody routes never become series of their own


def test_a_route_cannot_replace_the_kit_s_authentication(sample_settings: ServiceSettings) -> None:
    async def own_hook(_: Request[Any, Any, Any]) -> None:
        return None

    class Hooked(Controller):
        path = "/api/v1/hooked"
        before_request = own_hook

        @get("/", security=BEARER)
        async def private(self) -> dict[str, str]:
            return {"subject": caller().subject}

    with pytest.raises(ImproperlyConfiguredException, match="skip the kit's authentication"):
        create_service_app(ServiceDefinition(settings=sample_settings, title="t", route_handlers=[Hooked]))


@websocket("/ws/unguarded", opt={"security_schemes": ["BearerToken"]})
async def unguarded_socket(socket: WebSocket[Any, Any, Any]) -> None:
    await socket.accept()


@websocket("/ws/table", opt={"security_schemes": ["BearerToken"]}, guards=[authenticated])
async def table_socket(socket: WebSocket[Any, Any, Any]) -> None:
    await socket.accept()
    await socket.send_json({"subject": caller().subject})
    await socket.close()


@websocket("/ws/directors", opt={"security_schemes": ["BearerToken"]}, guards=[requires_roles("tournament_director")])
async def directors_socket(socket: WebSocket[Any, Any, Any]) -> None:
    await socket.accept()


def test_a_websocket_declaring_security_must_be_guarded(sample_settings: ServiceSettings) -> None:
    with pytest.raises(ImproperlyConfiguredException, match="needs guards=\\[authenticated\\]"):
        create_service_app(ServiceDefinition(settings=sample_settings, title="t", route_handlers=[unguarded_socket]))
    # The kit's role guards authenticate before they check: enough on their own.
    create_service_app(ServiceDefinition(settings=sample_settings, title="t", route_handlers=[directors_socket]))


def test_a_guarded_websocket_knows_its_caller(
    sample_settings: ServiceSettings, signing_key: rsa.RSAPrivateKey, make_token: Callable[..., str]
) -> None:
    app = create_service_app(
        ServiceDefinition(
            settings=sample_settings,
            title="t",
            route_handlers=[table_socket],
            key_source=StaticKeySource({KID: signing_key.public_key()}),
        )
    )
    with TestClient(app=app) as client:
        headers = {"Authorization": f"Bearer {make_token(WS_PLAYER)}"}
        with client.websocket_connect("/ws/table", headers=headers) as socket:
            assert socket.receive_json() == {"subject": WS_PLAYER}
        with pytest.raises(WebSocketDisconnect), client.websocket_connect("/ws/table") as socket:
            socket.receive_json()


def test_dev_secret_is_refused_in_production() -> None:
    from tablium_kit.settings import InsecureSettingsError

    with pytest.raises(InsecureSettingsError, match="service_key, service_trust"):
        ServiceSettings.from_env("sample", {"TABLIUM_ENVIRONMENT": "production"})


def test_settings_from_environment() -> None:
    settings = ServiceSettings.from_env(
        "sample",
        {
            "TABLIUM_SAMPLE_PORT": "9001",
            "TABLIUM_PORT": "9999",  # the service-specific variable wins
            "TABLIUM_TRUSTED_PROXIES": '["10.0.0.0/8"]',
            "TABLIUM_LOG_JSON": "false",
        },
    )
    assert settings.port == 9001
    assert settings.trusted_proxies == ["10.0.0.0/8"]
    assert settings.log_json is False
    assert settings.database_url.endswith("/tablium_sample")
    import pytest

    with pytest.raises(ValueError, match="invalid settings"):
        ServiceSettings.from_env("sample", {"TABLIUM_PORT": "not-a-port"})


async def test_ready_is_503_naming_what_is_down(sample_settings: ServiceSettings) -> None:
    import msgspec

    from tablium_kit.app import ServiceDefinition, create_service_app

    broken = msgspec.structs.replace(sample_settings, redis_url="redis://127.0.0.1:9/0")
    app = create_service_app(ServiceDefinition(settings=broken, title="broken", route_handlers=[], uses_redis=True))
    async with AsyncTestClient(app=app) as client:
        assert (await client.get("/health")).status_code == 200  # alive, just not ready
        ready = await client.get("/ready")
        assert ready.status_code == 503
        assert ready.json()["checks"]["database"] == "up"
        assert ready.json()["checks"]["redis"].startswith("down")


async def test_refused_requests_carry_the_request_id_and_are_counted_as_refused(sample: AsyncTestClient) -> None:
    # Authentication answers before any handler runs; the answer still goes through the kit's layer.
    refused = await sample.get("/api/v1/sample/private", headers={"X-Request-ID": "req-401"})
    is_problem(refused, 401)
    assert refused.headers["x-request-id"] == "req-401"
    assert refused.headers["www-authenticate"] == "Bearer"
    metrics = (await sample.get("/metrics")).text
    private = 'path="/api/v1/sample/private",status_code='
    assert f'tablium_requests_total{{app_name="tablium-sample",method="GET",{private}"401"}}' in metrics
    assert f'{private}"500"' not in metrics  # not mistaken for a server error


def test_request_latency_buckets() -> None:
    from tablium_kit.middleware import RequestMetrics

    metrics = RequestMetrics()
    key = ("GET", "/x", 200, "tablium-test")
    for seconds in (0.001, 0.005, 0.006, 20.0):
        metrics.observe(key, seconds)
    requests, durations, errors = metrics.collect()
    assert requests.samples[0].value == 4
    buckets = {s.labels["le"]: s.value for s in durations.samples if s.name.endswith("_bucket")}
    assert buckets["0.005"] == 2  # "le": 0.005 itself is in the first bucket
    assert buckets["0.01"] == 3
    assert buckets["10.0"] == 3
    assert buckets["+Inf"] == 4
    total = next(s.value for s in durations.samples if s.name.endswith("_sum"))
    assert total == pytest.approx(20.012)
    assert errors.samples[0].value == 0
