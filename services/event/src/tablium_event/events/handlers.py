"""Events the event service consumes."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tablium_event.db.models import Registration
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


HANDLERS = {TRANSFER_VOIDED: on_transfer_voided}
