"""The outbox and inbox tables, added to each service's own ``MetaData`` (its migrations create them)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Identity,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB


@dataclass(frozen=True)
class MessagingTables:
    outbox: Table
    inbox: Table


def messaging_tables(metadata: MetaData) -> MessagingTables:
    """Add ``outbox`` and ``inbox`` to ``metadata`` (call once per service, next to its models)."""
    outbox = Table(
        "outbox",
        metadata,
        Column("id", Uuid, primary_key=True),
        # Commit order is unknowable; insertion order is the best publish order we have.
        Column("seq", BigInteger, Identity(), nullable=False),
        Column("type", String(200), nullable=False),
        Column("subject", String(200), nullable=False),
        Column("envelope", JSONB, nullable=False),
        # W3C trace context of the transaction that wrote the event.
        Column("headers", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("published_at", DateTime(timezone=True)),
        Column("attempts", Integer, nullable=False, server_default=text("0")),
    )
    # The relay only ever looks for unpublished rows; keep that index tiny.
    Index("ix_outbox_unpublished", outbox.c.seq, postgresql_where=outbox.c.published_at.is_(None))
    inbox = Table(
        "inbox",
        metadata,
        Column("consumer", String(200), primary_key=True),
        Column("event_id", Uuid, primary_key=True),
        Column("handled_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    )
    return MessagingTables(outbox=outbox, inbox=inbox)
