"""A running hand as committed: its last saved state with the actions recorded after it replayed.

The hot path (ADR 0012) records an accepted action as its ``hand_actions`` row alone; the hand's whole
state is saved at the deal, by every write under the table's row lock and at the hand's end, with
``state_actions`` saying how many actions it includes. The engine is deterministic from a state, so the
rows numbered above that, applied in order, give back exactly the hand that was committed.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tablium_lobby.db.models import HandAction, HandRecord
from tablium_lobby.domain.actions import replay_action
from tablium_poker import Hand


async def committed_hand(session: AsyncSession, record: HandRecord) -> Hand:
    """``record``'s hand with every committed action applied (read ``record`` in the same snapshot)."""
    hand = Hand.from_dict(record.state)
    if record.actions > record.state_actions:
        rows = await session.execute(
            select(HandAction.seat, HandAction.action, HandAction.amount, HandAction.automatic)
            .where(HandAction.hand_id == record.id, HandAction.number > record.state_actions)
            .order_by(HandAction.number)
        )
        for seat, action, amount, automatic in rows:
            replay_action(hand, seat, action, amount, automatic)
    return hand
