"""Events the player service publishes, through the kit's transactional outbox."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from tablium_kit.messaging import Outbox
from tablium_player.db.models import MESSAGING, Player

PLAYER_REGISTERED = "player.registered"

outbox = Outbox("player", MESSAGING)


async def publish_player_registered(session: AsyncSession, player: Player) -> None:
    """Written in the registration's transaction: the event exists if and only if the account does."""
    await outbox.add(
        session,
        type=PLAYER_REGISTERED,
        subject=str(player.id),
        data={"player_id": str(player.id), "username": player.username, "roles": list(player.roles)},
    )
