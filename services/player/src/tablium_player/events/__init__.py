"""Events the player service publishes, through the kit's transactional outbox (docs/events/player.md)."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from tablium_kit.messaging import Outbox
from tablium_player.db.models import MESSAGING, Player

PLAYER_REGISTERED = "player.registered"
PLAYER_LEVEL_UP = "player.level_up"

outbox = Outbox("player", MESSAGING)


async def publish_player_registered(session: AsyncSession, player: Player) -> None:
    """Written in the registration's transaction: the event exists if and only if the account does."""
    await outbox.add(
        session,
        type=PLAYER_REGISTERED,
        subject=str(player.id),
        data={"player_id": str(player.id), "username": player.username, "roles": list(player.roles)},
    )


async def publish_level_up(
    session: AsyncSession, *, player_id: uuid.UUID, old_level: int, new_level: int, xp: int, hand_id: uuid.UUID
) -> None:
    """Written in the transaction that added the XP: a level is announced once, when it is crossed."""
    await outbox.add(
        session,
        type=PLAYER_LEVEL_UP,
        subject=str(player_id),
        data={
            "player_id": str(player_id),
            "old_level": old_level,
            "new_level": new_level,
            "xp": xp,
            "hand_id": str(hand_id),
        },
    )
