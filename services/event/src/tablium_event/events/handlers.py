"""Events the event service consumes: a hold the wallet voided; the club membership projection (the kit's
``ClubProjection``, with services/clubs.py unregistering those who left before the start).

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


HANDLERS: dict[str, Handler] = {
    TRANSFER_VOIDED: on_transfer_voided,
    # club.member_joined/updated/left, club.closed, club.union_joined/left: the kit's projection.
    **clubs.PROJECTION.handlers(clubs.unregister),
}
