"""The CloudEvents 1.0 envelope every Tablium event travels in (JSON structured mode)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import msgspec

CONTENT_TYPE = "application/cloudevents+json"


class CloudEvent(msgspec.Struct, kw_only=True, frozen=True):
    """One fact that happened in a service (ARCHITECTURE.md §4)."""

    specversion: Literal["1.0"] = "1.0"
    id: uuid.UUID
    source: str
    type: str
    time: Annotated[datetime, msgspec.Meta(tz=True)]
    subject: str
    datacontenttype: Literal["application/json"] = "application/json"
    data: dict[str, Any] = msgspec.field(default_factory=dict)


def new_event(*, service: str, type: str, subject: str, data: dict[str, Any]) -> CloudEvent:
    return CloudEvent(
        id=uuid.uuid4(),
        source=f"/services/{service}",
        type=type,
        time=datetime.now(UTC),
        subject=subject,
        data=data,
    )


_decoder = msgspec.json.Decoder(CloudEvent)


def encode(event: CloudEvent) -> bytes:
    return msgspec.json.encode(event)


def decode(body: bytes) -> CloudEvent:
    """Parse a message body; raises ``msgspec.DecodeError``/``ValidationError`` when it is no envelope."""
    return _decoder.decode(body)
