"""Batched consumption: several deliveries handled in one transaction, acked together (ADR 0002).

A transaction's commit (its WAL flush) is what a delivery costs; handling up to ``batch_size`` of them in
one transaction pays it once. The pieces the consumer uses:

- :class:`Delivery`: a message with its decoded envelope and the channel it came on;
- :func:`handles_batches`: a per-message handler with a set-based twin, for event types that come in
  numbers (a plain ``(session, event)`` handler works in a batch too, called once per event);
- :class:`Deliveries`: the unsettled delivery tags of each channel, so a batch is acked with ONE
  ``basic.ack(multiple=True)`` when no older delivery is still open (and one by one when one is: a
  multiple ack would settle it too).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import msgspec
from aio_pika import IncomingMessage
from aio_pika.abc import AbstractIncomingMessage
from aiormq.abc import DeliveredMessage
from opentelemetry import propagate
from opentelemetry.context import Context
from sqlalchemy.ext.asyncio import AsyncSession

from tablium_kit.messaging.envelope import CloudEvent, decode

Handler = Callable[[AsyncSession, CloudEvent], Awaitable[None]]
BatchHandler = Callable[[AsyncSession, Sequence[CloudEvent]], Awaitable[None]]
_BATCH = "__tablium_batch_handler__"


def handles_batches(batch: BatchHandler) -> Handler:
    """The per-message handler of a set-based one: in a batch the consumer calls ``batch`` once with every
    new event of the type (in delivery order, where the type's first event stands); alone, with one.

    ``batch`` must have the effect of handling its events one after another.
    """

    async def handle(session: AsyncSession, event: CloudEvent) -> None:
        await batch(session, [event])

    handle.__name__ = handle.__qualname__ = getattr(batch, "__name__", "handle")
    handle.__doc__ = batch.__doc__
    setattr(handle, _BATCH, batch)
    return handle


def batch_handler_of(handler: Handler) -> BatchHandler | None:
    batch: BatchHandler | None = getattr(handler, _BATCH, None)
    return batch


class Delivery:
    """A delivery: its decoded envelope (or why the body is not one), the channel it came on and its tag.

    ``message`` is aio-pika's message (ack, nack, republish); one that came straight from the channel
    (:meth:`Deliveries.delivered`) gets it built on first use: a batch acks with one message, so most
    deliveries never need one.
    """

    __slots__ = ("_message", "_raw", "channel", "event", "tag")

    def __init__(
        self,
        message: AbstractIncomingMessage | None,
        event: CloudEvent | msgspec.MsgspecError,
        channel: Any,
        tag: int,
        raw: DeliveredMessage | None = None,
    ) -> None:
        self._message, self._raw = message, raw
        self.event, self.channel, self.tag = event, channel, tag

    @property
    def message(self) -> AbstractIncomingMessage:
        if self._message is None:
            assert self._raw is not None
            self._message = IncomingMessage(self._raw, no_ack=False)
        return self._message

    def trace_context(self) -> Context:
        """The W3C trace context its message carries, for its handler's span."""
        headers = self._raw.header.properties.headers if self._raw is not None else self.message.headers
        return propagate.extract({k: v for k, v in (headers or {}).items() if isinstance(v, str)})


class Deliveries:
    """Delivery tags not yet acked, nacked or given back, per channel (tags restart on a new channel)."""

    def __init__(self) -> None:
        self._open: dict[Any, set[int]] = {}

    def arrived(self, message: AbstractIncomingMessage) -> Delivery:
        channel = message.channel
        tag = message.delivery_tag or 0
        self._open.setdefault(channel, set()).add(tag)
        return Delivery(message, _decode(message.body), channel, tag)

    def delivered(self, raw: DeliveredMessage) -> Delivery:
        """:meth:`arrived` for a message straight from the channel (aio-pika's message built only if used)."""
        tag = raw.delivery_tag or 0
        open_tags = self._open.get(raw.channel)
        if open_tags is None:
            open_tags = self._open[raw.channel] = set()
        open_tags.add(tag)
        return Delivery(None, _decode(raw.body), raw.channel, tag, raw)

    def settled(self, delivery: Delivery) -> None:
        self._open.get(delivery.channel, set()).discard(delivery.tag)

    def forget_closed_channels(self) -> None:
        for channel in [c for c in self._open if getattr(c, "is_closed", False)]:
            del self._open[channel]

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        """Ack ``deliveries``: per channel one multiple ack up to the newest when every open delivery up to
        it is among them, else each on its own."""
        by_channel: dict[Any, list[Delivery]] = {}
        for delivery in deliveries:
            by_channel.setdefault(delivery.channel, []).append(delivery)
        for channel, mine in by_channel.items():
            tags = {d.tag for d in mine}
            newest = max(mine, key=lambda d: d.tag)
            still_open = self._open.get(channel, set())
            if len(mine) > 1 and all(t in tags for t in still_open if t <= newest.tag):
                await newest.message.ack(multiple=True)
            else:
                for delivery in mine:
                    await delivery.message.ack()
            still_open -= tags


def _decode(body: bytes) -> CloudEvent | msgspec.MsgspecError:
    try:
        return decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        return exc
