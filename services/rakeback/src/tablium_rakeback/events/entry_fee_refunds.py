"""``event.entry_fee_refunded``: a tournament fee given back, its accrual reversed exactly (ADR 0011,
"Tournament fees").

The fee was recorded as the "hand" of one player (``rakes`` keyed on the purchase id and the player, see
``entry_fees``). Its refund, once per purchase whatever the envelopes:

- not accrued yet (``pending``, or ``tier`` at a public tournament): the rake is marked ``refunded`` and
  never accrues (the re-evaluations and the tier run only read ``pending``/``accrued``/``tier`` rakes);
- accrued and not paid: its accrual rows are deleted: every receiver's part is gone, as if never accrued;
- accrued and paid (its period's run took it): reversal rows, the negation of each original part under the
  same kind, receiver and bps, at the refund's time (or the end of the last period paid, if later: the
  reversal is in an open period) under a "hand" id derived from the purchase, so the next period's run
  nets them off each receiver's payout (a receiver left negative carries it on);
- the refund before the fee (events may come in any order): the refunded rake is stored first, and the fee,
  when it arrives, finds its key taken and accrues nothing.

A refunded rake, and a reversal's, no longer count towards a player's rolling rake (tiers). A plain
per-message handler with the kit consumer's signature; it takes the accrual lock exclusively, like a club
fact (refunds are rare), so no hand batch or payout run interleaves with it.
"""

from __future__ import annotations

import uuid

import msgspec
from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from tablium_kit.messaging import CloudEvent
from tablium_kit.money import Amount, parse_amount
from tablium_rakeback.db.models import REFUNDED, Accrual, PayoutRun, Rake
from tablium_rakeback.services import accrual

ENTRY_FEE_REFUNDED = "event.entry_fee_refunded"
# The reversal of a paid fee is a "hand" of its own: uuid5 of the purchase id in this namespace.
REVERSALS = uuid.UUID("5b0c8a57-6e0f-4d5e-9a53-2f4a1e9d7c10")


class EntryFeeRefunded(msgspec.Struct, kw_only=True):
    tournament_id: uuid.UUID
    purchase_id: uuid.UUID
    player_id: uuid.UUID
    asset: str
    fee: Amount
    club_id: uuid.UUID | None = None
    union_id: uuid.UUID | None = None


def reversal_of(purchase_id: uuid.UUID) -> uuid.UUID:
    return uuid.uuid5(REVERSALS, str(purchase_id))


async def on_entry_fee_refunded(session: AsyncSession, event: CloudEvent) -> None:
    refunded = msgspec.convert(event.data, EntryFeeRefunded)
    await accrual.lock_for_facts(session)
    first = await session.scalar(
        insert(Rake)
        .values(
            hand_id=refunded.purchase_id,
            player_id=refunded.player_id,
            table_id=refunded.tournament_id,
            club_id=refunded.club_id,
            union_id=refunded.union_id,
            asset=refunded.asset,
            rake=parse_amount(refunded.fee),
            hand_time=event.time,
            status=REFUNDED,
        )
        .on_conflict_do_nothing()
        .returning(Rake.hand_id)
    )
    if first is not None:
        return  # the refund came first: the fee will find its purchase refunded
    rake = await session.get_one(Rake, (refunded.purchase_id, refunded.player_id), with_for_update=True)
    accrued, rake.status = rake.status == "accrued", REFUNDED
    if not accrued:
        return  # refunded already (another envelope), or never accrued: now it never will be
    key = (Accrual.hand_id == rake.hand_id) & (Accrual.player_id == rake.player_id)
    parts = (await session.scalars(select(Accrual).where(key))).all()
    if all(part.payout_id is None for part in parts):
        await session.execute(delete(Accrual).where(key))
        return
    reversal = reversal_of(rake.hand_id)
    # In the open period: a refund stated before the last run but handled after it still lands after it.
    paid_until = await session.scalar(select(func.max(PayoutRun.period_end)))
    at = max(event.time, paid_until) if paid_until is not None else event.time
    session.add(
        Rake(
            hand_id=reversal,
            player_id=rake.player_id,
            table_id=rake.table_id,
            club_id=rake.club_id,
            union_id=rake.union_id,
            asset=rake.asset,
            rake=-rake.rake,
            hand_time=at,
            status=REFUNDED,
            member_club_id=rake.member_club_id,
            deal_version=rake.deal_version,
            tier=rake.tier,
        )
    )
    session.add_all(
        Accrual(
            hand_id=reversal,
            player_id=part.player_id,
            kind=part.kind,
            beneficiary=part.beneficiary,
            asset=part.asset,
            amount=-part.amount,
            bps=part.bps,
            hand_time=at,
        )
        for part in parts
    )
