"""``event.entry_fee_refunded``: a tournament fee given back, its accrual reversed exactly (ADR 0011,
"Tournament fees").

The fee was recorded as the "hand" of one player (``rakes`` keyed on the purchase id and the player, see
``entry_fees``). Its refund, once per purchase whatever the envelopes:

- not accrued yet (``pending``, or ``tier`` at a public tournament): the rake is marked ``refunded`` and
  never accrues (the re-evaluations and the tier run only read ``pending``/``accrued``/``tier`` rakes);
- accrued and not paid: its parts are taken back out of its period's unpaid totals (computed again from
  what the rake row names), as if never accrued;
- accrued and paid (its period's run took it): the negation of each part is added to the receiver's unpaid
  total of the open period (the refund's, or the one after the last period paid if later: a refund handled
  after the run of the period it was stated in still lands, and is stated, in an open one), hands 0, rake
  and part negative, so the next run nets it off that receiver's payout (a receiver left negative carries
  it on: ``services/payouts.py``);
- the refund before the fee (events may come in any order): the refunded rake is stored first, and the fee,
  when it arrives, finds its key taken and accrues nothing.

A refunded rake no longer counts towards a player's rolling rake (tiers). A plain per-message handler with
the kit consumer's signature; it takes the accrual lock exclusively, like a club fact (refunds are rare), so
no hand batch or payout run interleaves with it.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import timedelta

import msgspec
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from tablium_kit.messaging import CloudEvent
from tablium_kit.money import Amount, parse_amount
from tablium_rakeback.db.models import REFUNDED, PayoutRun, Rake
from tablium_rakeback.domain.periods import period_of
from tablium_rakeback.domain.split import Part
from tablium_rakeback.domain.tiers import Tier
from tablium_rakeback.services import accrual, totals

ENTRY_FEE_REFUNDED = "event.entry_fee_refunded"


class EntryFeeRefunded(msgspec.Struct, kw_only=True):
    tournament_id: uuid.UUID
    purchase_id: uuid.UUID
    player_id: uuid.UUID
    asset: str
    fee: Amount
    club_id: uuid.UUID | None = None
    union_id: uuid.UUID | None = None


async def on_entry_fee_refunded(
    session: AsyncSession, event: CloudEvent, period: timedelta, tiers: Mapping[str, list[Tier]]
) -> None:
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
            period_start=period_of(event.time, period).start,
            status=REFUNDED,
        )
        .on_conflict_do_nothing()
        .returning(Rake.hand_id)
    )
    if first is not None:
        return  # the refund came first: the fee will find its purchase refunded
    rake = await session.get_one(Rake, (refunded.purchase_id, refunded.player_id), with_for_update=True)
    accrued = rake.status == "accrued"
    parts = await accrual.parts_of(session, rake, dict(tiers))  # None unless accrued
    if accrued and parts is None:
        # Accrued by a tier the settings no longer name: its parts can't be recomputed, so they can't be
        # reversed exactly. Refuse (the message goes to the dead letters) rather than leave them paid.
        raise LookupError(f"tier {rake.tier!r} of the refunded fee {rake.hand_id} is not in the settings")
    rake.status = REFUNDED
    if parts is None:
        return  # refunded already (another envelope), or never accrued: now it never will be
    if not rake.paid:
        await totals.take_back(session, rake, parts)
        return
    paid_until = await session.scalar(select(func.max(PayoutRun.period_end)))
    at = max(event.time, paid_until) if paid_until is not None else event.time
    reversal = accrual.NewRake(
        hand_id=rake.hand_id,
        player_id=rake.player_id,
        table_id=rake.table_id,
        club_id=rake.club_id,
        union_id=rake.union_id,
        asset=rake.asset,
        rake=-rake.rake,
        hand_time=at,
        period_start=period_of(at, period).start,
        status=REFUNDED,
    )
    negated = [Part(p.kind, p.beneficiary, p.bps, -p.amount) for p in parts]
    await totals.write_parts(session, [(reversal, negated)], hands=0)
