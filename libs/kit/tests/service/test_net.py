"""The real client behind trusted proxies."""

from __future__ import annotations

import ipaddress

from tablium_kit.net import real_client

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
