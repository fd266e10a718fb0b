"""The real client behind trusted proxies."""

from __future__ import annotations

import ipaddress

from litestar.types import Message, Receive, Scope, Send

from tablium_kit.middleware import ServiceLayer
from tablium_kit.net import real_client
from tablium_kit.settings import ServiceSettings

GATEWAY = [ipaddress.ip_network("127.0.0.1/32"), ipaddress.ip_network("10.0.0.0/8")]


def test_direct_client_is_the_peer() -> None:
    assert real_client("203.0.113.5", None, GATEWAY) == "203.0.113.5"


def test_untrusted_peer_cannot_choose_its_address() -> None:
    assert real_client("203.0.113.5", "1.2.3.4", GATEWAY) == "203.0.113.5"


def test_trusted_proxy_chain_gives_the_first_untrusted_hop_from_the_right() -> None:
    # The client forged the first entry; the gateway appended the address it saw.
    assert real_client("127.0.0.1", "6.6.6.6, 198.51.100.7", GATEWAY) == "198.51.100.7"
    # Two trusted hops (ingress then gateway).
    assert real_client("127.0.0.1", "198.51.100.7, 10.1.2.3", GATEWAY) == "198.51.100.7"


def test_garbage_header_does_not_crash() -> None:
    assert real_client("127.0.0.1", " , ,", GATEWAY) == "127.0.0.1"
    assert real_client("127.0.0.1", "not-an-ip", GATEWAY) == "not-an-ip"


async def _client_seen(layer_settings: ServiceSettings, peer: str, forwarded_for: str) -> str:
    seen: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["client"][0])

    layer = ServiceLayer(app, trusted_proxies=layer_settings.trusted_proxies, app_name="t")
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/",
        "query_string": b"",
        "headers": [(b"x-forwarded-for", forwarded_for.encode())],
        "client": (peer, 5000),
        "state": {},
    }

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    async def send(_: Message) -> None:
        pass

    await layer(scope, receive, send)  # type: ignore[arg-type]
    return seen[0]


async def test_no_proxy_is_trusted_by_default_not_even_loopback() -> None:
    """A local client rotating X-Forwarded-For must not get a new address (and login limit) each time."""
    defaults = ServiceSettings.from_env("sample", {})
    assert defaults.trusted_proxies == []
    assert await _client_seen(defaults, "127.0.0.1", "198.51.100.7") == "127.0.0.1"
    assert await _client_seen(defaults, "::1", "198.51.100.7") == "::1"


async def test_the_configured_gateway_is_believed() -> None:
    behind_gateway = ServiceSettings.from_env("sample", {"TABLIUM_TRUSTED_PROXIES": '["10.1.2.3"]'})
    assert await _client_seen(behind_gateway, "10.1.2.3", "198.51.100.7") == "198.51.100.7"
    assert await _client_seen(behind_gateway, "127.0.0.1", "198.51.100.7") == "127.0.0.1"
