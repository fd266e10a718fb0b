"""Writing events: one row in the caller's transaction, published later by the relay.

The row commits or rolls back with the state change it describes, so no event is ever published for a
change that did not happen, and none is lost once the change committed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import msgspec
from opentelemetry import propagate
from sqlalchemy import Text, bindparam, cast, event, insert
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from tablium_kit.messaging.catalog import CATALOG, EventSpec, publisher
from tablium_kit.messaging.envelope import MAX_EVENT_BYTES, CloudEvent, new_event
from tablium_kit.messaging.tables import MessagingTables

_PENDING = "tablium.outbox.pending"
# An outbox row's values as Outbox.row renders them (the columns without a default).
OutboxRow = dict[str, Any]
# Relays of this process, woken right after a transaction that wrote events commits.
_wake_on_commit: set[Callable[[], None]] = set()


def subscribe_commits(wake: Callable[[], None]) -> None:
    _wake_on_commit.add(wake)


def unsubscribe_commits(wake: Callable[[], None]) -> None:
    _wake_on_commit.discard(wake)


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    if session.info.pop(_PENDING, False):
        events_committed()


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(_PENDING, None)


class UnknownEventError(ValueError):
    """The event type is not in the catalog, or this service is not its publisher."""


class EventTooLargeError(ValueError):
    """The envelope is over :data:`MAX_EVENT_BYTES`: split the data into several events."""


def check_size(event: CloudEvent, encoded: bytes | None = None) -> None:
    """Refuse an envelope over the cap, at write time, while the caller can still split it (``encoded``:
    the envelope as JSON, when the caller has it already)."""
    size = len(encoded if encoded is not None else msgspec.json.encode(event))
    if size > MAX_EVENT_BYTES:
        raise EventTooLargeError(
            f"{event.type} for {event.subject!r} is {size} bytes, over the {MAX_EVENT_BYTES}-byte cap of one "
            "event: split its data into several events (ADR 0002)"
        )


class Outbox:
    """A service's event writer: ``await outbox.add(session, type=..., subject=..., data=...)``."""

    def __init__(self, service: str, tables: MessagingTables, *, catalog: Mapping[str, EventSpec] = CATALOG) -> None:
        self._service = service
        self._table = tables.outbox
        self._catalog = catalog
        self._insert = insert(self._table).values(
            envelope=cast(bindparam("envelope_text", type_=Text), JSONB),
            headers=cast(bindparam("headers_text", type_=Text), JSONB),
        )

    async def add(self, session: AsyncSession, *, type: str, subject: str, data: dict[str, Any]) -> CloudEvent:
        """Record an event in ``session``'s transaction; it is published after that transaction commits.

        Raises :class:`UnknownEventError` for a type this service doesn't publish and
        :class:`EventTooLargeError` for an envelope over :data:`MAX_EVENT_BYTES`.
        """
        (event,) = await self.add_many(session, [(type, subject, data)])
        return event

    async def add_many(
        self, session: AsyncSession, events: Sequence[tuple[str, str, dict[str, Any]]]
    ) -> list[CloudEvent]:
        """Record several events, each ``(type, subject, data)``, in one insert (same rules as :meth:`add`)."""
        if not events:
            return []
        header_text = _trace_headers()
        made: list[CloudEvent] = []
        rows: list[dict[str, Any]] = []
        for type_, subject, data in events:
            event, row = self._row(type_, subject, data, header_text)
            made.append(event)
            rows.append(row)
        # A list of rows: one statement compiled once (cached), sent in multi-row batches by SQLAlchemy. The
        # envelope goes in as the JSON text msgspec encoded once (for the size check too), cast by Postgres:
        # a dict bound to JSONB was serialised again by the stdlib encoder (~12% of a busy consumer's batch).
        await session.execute(self._insert, rows)
        session.info[_PENDING] = True
        return made

    def row(self, *, type: str, subject: str, data: dict[str, Any]) -> tuple[CloudEvent, OutboxRow]:
        """The event :meth:`add` would record and its outbox row's values, for a caller that writes the row
        in a statement of its own (same rules as :meth:`add`): ``id``, ``type``, ``subject``, and
        ``envelope_text`` and ``headers_text`` (JSON text, to be cast to ``jsonb``); ``seq``, ``created_at``
        and ``attempts`` are the columns' defaults. Once that statement committed, call
        :func:`events_committed` (the relays of this process are woken as after :meth:`add`'s commit)."""
        return self._row(type, subject, data, _trace_headers())

    def _row(self, type_: str, subject: str, data: dict[str, Any], header_text: str) -> tuple[CloudEvent, OutboxRow]:
        if type_ not in self._catalog or publisher(type_) != self._service:
            raise UnknownEventError(f"{self._service} does not publish {type_!r} (see messaging/catalog.py)")
        event = new_event(service=self._service, type=type_, subject=subject, data=data)
        body = msgspec.json.encode(event)
        check_size(event, body)
        return event, {
            "id": event.id,
            "type": event.type,
            "subject": event.subject,
            "envelope_text": body.decode(),
            "headers_text": header_text,
        }


def _trace_headers() -> str:
    """The W3C trace context of the current span, as the outbox's ``headers`` JSON text."""
    headers: dict[str, str] = {}
    propagate.inject(headers)
    return msgspec.json.encode(headers).decode()


def events_committed() -> None:
    """Events were committed outside a :class:`Session` (an :meth:`Outbox.row` written by a statement of the
    caller's own): wake this process's relays, as a session's commit does."""
    for wake in tuple(_wake_on_commit):
        wake()
