"""What the player service does with other services' events (docs/events/player.md).

Each handler runs in the kit consumer's transaction, with its inbox row: a redelivered envelope is
skipped. The stats also key each row on the fact itself (hand, player), so the same hand in another
envelope, or handled by two consumers at once, still counts once.
"""

from __future__ import annotations

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from tablium_kit.messaging import CloudEvent
from tablium_kit.messaging.consumer import Handler
from tablium_player.domain.hands import HandCompleted
from tablium_player.services.hand_stats import record_hand

HAND_COMPLETED = "lobby.hand_completed"


async def on_hand_completed(session: AsyncSession, event: CloudEvent) -> None:
    hand = msgspec.convert(event.data, HandCompleted)
    await record_hand(session, hand, finished_at=event.time)


HANDLERS: dict[str, Handler] = {HAND_COMPLETED: on_hand_completed}
