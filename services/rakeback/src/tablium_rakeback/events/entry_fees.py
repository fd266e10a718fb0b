"""``event.entry_fee_paid``: a tournament's fee, accrued exactly like a hand's rake (ADR 0011, "Tournament fees").

One purchase (entry, re-entry, rebuy, add-on) is one "hand" of one player: the purchase id takes the hand's
place (the rake is keyed on it and the player, so the same fee in any envelope counts once), the tournament
the table's, the fee the rake, the envelope's time the hand's. The tournament's ``club_id``/``union_id``
choose the split as a table's do: the club's deal in force at the purchase's time (at a union tournament,
the deal of the player's own club in the union), or at a public tournament the player's tier at the
period's payout run, the fee counting towards the tier's rolling rake. A plain per-message handler with
the kit consumer's signature.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from tablium_kit.messaging import CloudEvent
from tablium_kit.money import Amount, parse_amount
from tablium_rakeback.services import facts

ENTRY_FEE_PAID = "event.entry_fee_paid"


class EntryFeePaid(msgspec.Struct, kw_only=True):
    tournament_id: uuid.UUID
    purchase_id: uuid.UUID
    kind: str
    player_id: uuid.UUID
    asset: str
    fee: Amount
    club_id: uuid.UUID | None = None
    union_id: uuid.UUID | None = None


async def on_entry_fee_paid(session: AsyncSession, event: CloudEvent, period: timedelta = facts.WEEK) -> None:
    paid = msgspec.convert(event.data, EntryFeePaid)
    await facts.record_hand(
        session,
        facts.Hand(
            hand_id=paid.purchase_id,
            table_id=paid.tournament_id,
            club_id=paid.club_id,
            union_id=paid.union_id,
            asset=paid.asset,
            time=event.time,
            players=[facts.PlayerRake(paid.player_id, parse_amount(paid.fee))],
        ),
        period,
    )
