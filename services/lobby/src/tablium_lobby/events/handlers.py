"""What the lobby does with other services' events: the club membership projection (services/clubs.py).

Each handler runs in the kit consumer's transaction with its inbox row (a redelivery is skipped); the
rows' seq makes a late older event change nothing, so duplicates and reordering are harmless.
"""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from tablium_kit.messaging import CloudEvent
from tablium_kit.messaging.consumer import Handler
from tablium_lobby.services.clubs import apply_closed, apply_member, apply_union, stand_up_after_hand


async def on_member(session: AsyncSession, event: CloudEvent) -> None:
    await apply_member(session, event.data, role=str(event.data["role"]))


async def on_member_left(session: AsyncSession, event: CloudEvent) -> None:
    await apply_member(session, event.data, role=None)
    await session.flush()
    await stand_up_after_hand(session, player_id=uuid.UUID(event.data["player_id"]))


async def on_club_closed(session: AsyncSession, event: CloudEvent) -> None:
    for player_id in await apply_closed(session, event.data):
        await stand_up_after_hand(session, player_id=player_id)


async def on_union_joined(session: AsyncSession, event: CloudEvent) -> None:
    await apply_union(session, event.data, member=True)


async def on_union_left(session: AsyncSession, event: CloudEvent) -> None:
    await apply_union(session, event.data, member=False)
    await session.flush()
    await stand_up_after_hand(session, union_id=uuid.UUID(event.data["union_id"]))


HANDLERS: dict[str, Handler] = {
    "club.member_joined": on_member,
    "club.member_updated": on_member,
    "club.member_left": on_member_left,
    "club.closed": on_club_closed,
    "club.union_joined": on_union_joined,
    "club.union_left": on_union_left,
}
