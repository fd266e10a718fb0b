"""Events the event service consumes: a hold the wallet voided; the club membership projection
(services/clubs.py).

Each handler runs in the kit consumer's transaction with its inbox row (a redelivery is skipped); the
projection's seq makes a late older event change nothing, so duplicates and reordering are harmless.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tablium_event.db.models import Registration
from tablium_event.services import clubs
from tablium_kit.messaging.consumer import Handler
from tablium_kit.messaging.envelope import CloudEvent

TRANSFER_VOIDED = "wallet.transfer_voided"


async def on_transfer_voided(session: AsyncSession, event: CloudEvent) -> None:
    """A registration hold voided or expired in the wallet (not by us): the entry is no longer paid for."""
    pending_id = event.data.get("pending_id")
    if not pending_id:
        return
    reg = await session.scalar(
        select(Registration).where(Registration.hold_transfer_id == uuid.UUID(pending_id)).with_for_update()
    )
    if reg is not None and reg.status in ("holding", "held"):
        reg.status = "voided"
        reg.failure = f"the hold was {event.data.get('status', 'voided')} by the wallet"


async def on_member(session: AsyncSession, event: CloudEvent) -> None:
    await clubs.apply_member(session, event.data, role=str(event.data["role"]))


async def on_member_left(session: AsyncSession, event: CloudEvent) -> None:
    await clubs.apply_member(session, event.data, role=None)
    await session.flush()
    await clubs.unregister_leavers(session, player_id=uuid.UUID(event.data["player_id"]))


async def on_club_closed(session: AsyncSession, event: CloudEvent) -> None:
    await clubs.apply_closed(session, event.data)
    await session.flush()
    await clubs.unregister_leavers(session, club_id=uuid.UUID(event.data["club_id"]))


async def on_union_joined(session: AsyncSession, event: CloudEvent) -> None:
    await clubs.apply_union(session, event.data, member=True)


async def on_union_left(session: AsyncSession, event: CloudEvent) -> None:
    await clubs.apply_union(session, event.data, member=False)
    await session.flush()
    await clubs.unregister_leavers(session, union_id=uuid.UUID(event.data["union_id"]))


HANDLERS: dict[str, Handler] = {
    TRANSFER_VOIDED: on_transfer_voided,
    "club.member_joined": on_member,
    "club.member_updated": on_member,
    "club.member_left": on_member_left,
    "club.closed": on_club_closed,
    "club.union_joined": on_union_joined,
    "club.union_left": on_union_left,
}
