"""Batched consumption: several deliveries handled in one transaction, acked together (ADR 0002).

A transaction's commit (its WAL flush) is what a delivery costs; handling up to ``batch_size`` of them in
one transaction pays it once. The pieces the consumer uses:

- :class:`Delivery`: a message with its decoded envelope and the channel it came on;
- :func:`handles_batches`: a per-message handler with a set-based twin, for event types that come in
  numbers (a plain ``(session, event)`` handler works in a batch too, called once per event);
- :class:`Deliveries`: the unsettled delivery tags of each channel, so a batch is acked with ONE
  ``basic.ack(multiple=True)`` when no older delivery is still open (and when one is, its ack waits for
  the one that covers that older delivery too: a multiple ack would settle it).
"""

from __future__ import annotations

import asyncio
import logging
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

log = logging.getLogger(__name__)

Handler = Callable[[AsyncSession, CloudEvent], Awaitable[None]]
BatchHandler = Callable[[AsyncSession, Sequence[CloudEvent]], Awaitable[None]]
_BATCH = "__tablium_batch_handler__"


class Unchecked:
    """The type of :data:`UNCHECKED`: a delivery whose signature was not looked at yet."""


UNCHECKED = Unchecked()


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

    __slots__ = ("_message", "_raw", "channel", "event", "forgery", "tag")

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
        # Why the message can't be from its type's publisher (None: it is), once the consumer checked.
        self.forgery: str | Unchecked | None = UNCHECKED

    @property
    def message(self) -> AbstractIncomingMessage:
        if self._message is None:
            assert self._raw is not None
            self._message = IncomingMessage(self._raw, no_ack=False)
        return self._message

    def signed(self) -> tuple[bytes, dict[str, Any]]:
        """The body as it came and the headers (where its signature is)."""
        if self._raw is not None:
            return self._raw.body, dict(self._raw.header.properties.headers or {})
        return self.message.body, dict(self.message.headers or {})

    def trace_context(self) -> Context:
        """The W3C trace context its message carries, for its handler's span."""
        headers = self._raw.header.properties.headers if self._raw is not None else self.message.headers
        return propagate.extract({k: v for k, v in (headers or {}).items() if isinstance(v, str)})


class Deliveries:
    """Delivery tags not yet acked, nacked or given back, per channel (tags restart on a new channel), and
    the committed ones waiting for their ack.

    A multiple ack settles every unsettled delivery of the channel up to its tag, so it may only cover
    committed ones. A batch that commits while an older delivery is still open (another batch in flight
    below it) is not acked message by message: it waits, and the ack that can cover it (the older batch's,
    or an older delivery settled on its own: :meth:`flush`) covers it too. So the consumer sends about one
    ack per batch whatever order its batches end in. Waiting is safe: its effects are committed, and a
    delivery given to another consumer after a crash meets its inbox row.
    """

    def __init__(self, hold: int = 0) -> None:
        self._open: dict[Any, set[int]] = {}
        self._committed: dict[Any, dict[int, Delivery]] = {}
        # At most this many committed deliveries of a channel wait; past it (an older batch is slow, and
        # waiting ones would fill the prefetch window) they are acked one by one, as they can't be covered.
        self._hold = hold

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
            self._committed.pop(channel, None)

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        """Ack committed ``deliveries``: per channel, one multiple ack up to the newest committed delivery
        with no open uncommitted one below it; the rest wait for the ack that can cover them."""
        channels = []
        for delivery in deliveries:
            committed = self._committed.get(delivery.channel)
            if committed is None:
                committed = self._committed[delivery.channel] = {}
                channels.append(delivery.channel)
            elif delivery.channel not in channels:
                channels.append(delivery.channel)
            committed[delivery.tag] = delivery
        for channel in channels:
            await self.flush(channel)

    async def flush(self, channel: Any) -> None:
        """Ack what of ``channel``'s committed deliveries no open uncommitted delivery precedes (call after
        settling one on its own: it may have been what they waited for)."""
        committed = self._committed.get(channel)
        if not committed:
            return
        still_open = self._open.get(channel, set())
        below = min((t for t in still_open if t not in committed), default=None)
        ready = [t for t in committed if below is None or t < below]
        if not ready:
            if len(committed) > self._hold:
                waiting = list(committed.values())
                committed.clear()
                for delivery in waiting:
                    still_open.discard(delivery.tag)
                for delivery in waiting:
                    await delivery.message.ack()
            return
        newest = committed[max(ready)]
        for tag in ready:
            del committed[tag]
            still_open.discard(tag)
        # Settled here, before the await: a concurrent flush never acks them twice.
        await newest.message.ack(multiple=len(ready) > 1)


def _decode(body: bytes) -> CloudEvent | msgspec.MsgspecError:
    try:
        return decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        return exc


async def take_over_deliveries(
    channel: Any, consumer_tag: str, on_delivered: Callable[[DeliveredMessage], Awaitable[None]]
) -> bool:
    """Have aiormq's channel hand ``consumer_tag``'s deliveries to ``on_delivered`` directly, not through
    aio-pika's callback, which builds a message object and starts one more task per delivery (the consumer's
    largest per-message cost outside its handler). False where the channel is not open or doesn't look as
    expected: aio-pika's path stays, just slower."""
    try:
        underlay = await channel.get_underlay_channel()
    except Exception:
        log.debug("consumer %s keeps aio-pika's deliveries (channel not open)", consumer_tag, exc_info=True)
        return False
    consumers = getattr(underlay, "consumers", None)
    if not isinstance(consumers, dict) or consumer_tag not in consumers:
        return False
    consumers[consumer_tag] = on_delivered
    return True


class SubjectTurns:
    """Ordered handlers' turns: a batch holding events of ordered subjects waits for the last earlier batch that
    held one of them (its turn), so one subject's events are handled one after another in delivery order."""

    def __init__(self) -> None:
        # Per subject, the turn of the last batch holding an event of it.
        self._turns: dict[str, asyncio.Future[None]] = {}

    def take(self, subjects: set[str]) -> tuple[set[asyncio.Future[None]], asyncio.Future[None] | None]:
        """(the turns of earlier batches to wait for, this batch's) over ``subjects``."""
        if not subjects:
            return set(), None
        mine: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        previous = {self._turns[s] for s in subjects if s in self._turns}
        for subject in subjects:
            self._turns[subject] = mine
        return previous, mine

    def end(self, mine: asyncio.Future[None]) -> None:
        mine.set_result(None)
        for subject in [s for s, turn in self._turns.items() if turn is mine]:
            del self._turns[subject]
