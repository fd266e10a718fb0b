"""Events the wallet publishes, through the kit's transactional outbox.

A batch of transfers writes its events in the batch's own transaction: the first through
:meth:`Outbox.add` (which checks the catalog and wakes this process's relay when the transaction
commits), the rest with one set-based INSERT into the same outbox table.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
from opentelemetry import propagate
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from tablium_kit.messaging import CATALOG, Outbox, UnknownEventError
from tablium_kit.messaging.envelope import new_event
from tablium_kit.messaging.outbox import check_size
from tablium_wallet.db.models import MESSAGING

SERVICE = "wallet"
TRANSFER_POSTED = "wallet.transfer_posted"
TRANSFER_VOIDED = "wallet.transfer_voided"
LIMIT_EXCEEDED = "wallet.limit_exceeded"
outbox = Outbox(SERVICE, MESSAGING)


@dataclass(frozen=True)
class Event:
    type: str
    subject: str
    data: dict[str, Any]


_INSERT = text(
    "INSERT INTO outbox (id, type, subject, envelope, headers) "
    "SELECT i, t, s, e::jsonb, CAST(:headers AS jsonb) FROM unnest("
    "CAST(:id AS uuid[]), CAST(:type AS text[]), CAST(:subject AS text[]), CAST(:envelope AS text[])"
    ") AS u(i, t, s, e)"
)


async def record_events(session: AsyncSession, events: Sequence[Event]) -> None:
    """Write ``events`` in ``session``'s transaction; they are published once it commits."""
    first, *rest = events
    for event in rest:
        if event.type not in CATALOG or not event.type.startswith(f"{SERVICE}."):
            raise UnknownEventError(f"{SERVICE} does not publish {event.type!r}")
    await outbox.add(session, type=first.type, subject=first.subject, data=first.data)
    if not rest:
        return
    envelopes = [new_event(service=SERVICE, type=e.type, subject=e.subject, data=e.data) for e in rest]
    encoded = [msgspec.json.encode(e) for e in envelopes]
    for envelope, body in zip(envelopes, encoded, strict=True):
        check_size(envelope, body)  # what Outbox.add checks for the first
    headers: dict[str, str] = {}
    propagate.inject(headers)
    await session.execute(
        _INSERT,
        {
            "id": [e.id for e in envelopes],
            "type": [e.type for e in envelopes],
            "subject": [e.subject for e in envelopes],
            "envelope": [body.decode() for body in encoded],
            "headers": json.dumps(headers),
        },
    )
