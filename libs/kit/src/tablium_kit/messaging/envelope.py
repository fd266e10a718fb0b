"""The CloudEvents 1.0 envelope every Tablium event travels in (JSON structured mode)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import msgspec

CONTENT_TYPE = "application/cloudevents+json"
# Largest envelope (compact JSON) an outbox accepts. Big enough for any one fact; small enough that a
# message never nears the broker's limit (16 MiB by default since RabbitMQ 4) nor holds a consumer's
# prefetch hostage. A list that grows with the field (a tournament's table instructions) is split.
MAX_EVENT_BYTES = 256 * 1024
# What the relay publishes is Postgres's text of the JSONB envelope: a space after every ':' and ','
# makes it longer than the compact JSON, never twice as long. A bigger row can't be from Outbox.add.
MAX_MESSAGE_BYTES = 2 * MAX_EVENT_BYTES


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
