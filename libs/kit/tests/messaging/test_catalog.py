"""The event catalog and the envelope: names in form, AsyncAPI rendering, CloudEvents on the wire."""

from __future__ import annotations

import re
import uuid

import msgspec
import pytest

from tablium_kit.messaging import CATALOG, asyncapi
from tablium_kit.messaging.catalog import SERVICES, publisher
from tablium_kit.messaging.envelope import decode, encode, new_event

NAME = re.compile(rf"^({'|'.join(SERVICES)})\.[a-z][a-z0-9]*(_[a-z0-9]+)*$")


@pytest.mark.parametrize("event_type", sorted(CATALOG))
def test_every_catalog_name_is_service_dot_snake_case(event_type: str) -> None:
    assert NAME.match(event_type), event_type
    spec = CATALOG[event_type]
    assert set(spec.consumers) <= set(SERVICES)
    assert publisher(event_type) not in spec.consumers


def test_the_starting_catalog_of_the_architecture_is_there() -> None:
    assert {"player.registered", "wallet.transfer_posted", "lobby.hand_completed", "event.prize_awarded"} <= set(
        CATALOG
    )
    assert len(CATALOG) >= 33  # ARCHITECTURE.md §4 lists 33


def test_asyncapi_has_a_channel_and_a_send_operation_per_event_type() -> None:
    document = asyncapi()
    assert document["asyncapi"].startswith("3.")
    addresses = {channel["address"] for channel in document["channels"].values()}
    assert addresses == set(CATALOG)
    sends = [op for op in document["operations"].values() if op["action"] == "send"]
    assert len(sends) == len(CATALOG)
    receives = [op for op in document["operations"].values() if op["action"] == "receive"]
    assert len(receives) == sum(len(spec.consumers) for spec in CATALOG.values())
    for message in document["components"]["messages"].values():
        ref = message["payload"]["$ref"]
        assert ref.removeprefix("#/components/schemas/") in document["components"]["schemas"]


def test_the_envelope_is_cloudevents_json_structured_mode() -> None:
    event = new_event(service="wallet", type="wallet.transfer_posted", subject="t-1", data={"amount": 100})
    wire = msgspec.json.decode(encode(event))
    assert wire["specversion"] == "1.0"
    assert uuid.UUID(wire["id"]) == event.id
    assert wire["source"] == "/services/wallet"
    assert wire["type"] == "wallet.transfer_posted"
    assert wire["subject"] == "t-1"
    assert wire["datacontenttype"] == "application/json"
    assert wire["time"].endswith("Z")
    assert wire["data"] == {"amount": 100}
    assert decode(encode(event)) == event


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b'{"specversion": "1.0"}',
        b'{"specversion":"0.3","id":"6f1c0f5e-0b8e-4c53-9d6a-3f1f8f0b2a11","source":"/services/x",'
        b'"type":"x.y","time":"2026-01-01T00:00:00Z","subject":"s","data":{}}',
        b'{"specversion":"1.0","id":"not-a-uuid","source":"/services/x",'
        b'"type":"x.y","time":"2026-01-01T00:00:00Z","subject":"s","data":{}}',
        b'{"specversion":"1.0","id":"6f1c0f5e-0b8e-4c53-9d6a-3f1f8f0b2a11","source":"/services/x",'
        b'"type":"x.y","time":"2026-01-01T00:00:00","subject":"s","data":{}}',
    ],
)
def test_what_is_not_an_envelope_is_refused(body: bytes) -> None:
    with pytest.raises((msgspec.DecodeError, msgspec.ValidationError)):
        decode(body)
