"""What the rakeback service does with other services' events (docs/events/rakeback.md).

Each handler runs in the kit consumer's transaction with its inbox row (a redelivered envelope is
skipped); the rows they write are keyed on the facts themselves (hand and player, club and seq, deal
version, payout id), so the same fact in another envelope changes nothing either.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from tablium_kit.messaging import CloudEvent, handles_batches
from tablium_kit.messaging.consumer import Handler
from tablium_kit.money import Amount, parse_amount
from tablium_rakeback.domain.split import AgentDeal, Deal
from tablium_rakeback.domain.tiers import DEFAULT_TIERS, Tier
from tablium_rakeback.events.entry_fee_refunds import ENTRY_FEE_REFUNDED, on_entry_fee_refunded
from tablium_rakeback.events.entry_fees import ENTRY_FEE_PAID, on_entry_fee_paid
from tablium_rakeback.services import facts
from tablium_rakeback.services.payouts import complete_payout


class _Seat(msgspec.Struct, kw_only=True):
    player_id: uuid.UUID
    rake: Amount = "0"


class HandCompleted(msgspec.Struct, kw_only=True):
    hand_id: uuid.UUID
    table_id: uuid.UUID
    asset: str
    players: list[_Seat]
    # Absent (a lobby before clubs) reads as a public table.
    club_id: uuid.UUID | None = None
    union_id: uuid.UUID | None = None
    tournament_id: uuid.UUID | None = None


class _ClubFact(msgspec.Struct, kw_only=True):
    club_id: uuid.UUID
    seq: int


class ClubCreated(_ClubFact, kw_only=True):
    owner_id: uuid.UUID


class MemberFact(_ClubFact, kw_only=True):
    player_id: uuid.UUID
    role: str = "member"
    agent_id: uuid.UUID | None = None


class UnionFact(_ClubFact, kw_only=True):
    union_id: uuid.UUID


class _AgentTerms(msgspec.Struct, kw_only=True):
    agent_id: uuid.UUID
    parent_agent_id: uuid.UUID | None = None
    bps: int
    player_bps: int


class DealChanged(_ClubFact, kw_only=True):
    union_id: uuid.UUID | None = None
    version: int
    effective_from: datetime
    union_bps: int | None = None
    club_bps: int
    player_bps: int
    agents: list[_AgentTerms] = msgspec.field(default_factory=list)


class TransferPosted(msgspec.Struct, kw_only=True):
    transfer_id: uuid.UUID
    code: str
    metadata: dict[str, object] = msgspec.field(default_factory=dict)


async def on_hands_completed(
    session: AsyncSession, events: Sequence[CloudEvent], period: timedelta = facts.WEEK
) -> None:
    """Every ``lobby.hand_completed`` of a consumer batch, accrued set-based (``facts.record_hands``);
    ``period``: the length of payout periods (the totals' key)."""
    hands = []
    for event in events:
        hand = msgspec.convert(event.data, HandCompleted)
        if hand.tournament_id is not None:
            continue  # tournament tables take no rake (the entry fee is the house's, see the ADR)
        hands.append(
            facts.Hand(
                hand_id=hand.hand_id,
                table_id=hand.table_id,
                club_id=hand.club_id,
                union_id=hand.union_id,
                asset=hand.asset,
                time=event.time,
                players=[facts.PlayerRake(s.player_id, parse_amount(s.rake)) for s in hand.players],
            )
        )
    await facts.record_hands(session, hands, period)


async def on_club_created(session: AsyncSession, event: CloudEvent) -> None:
    fact = msgspec.convert(event.data, ClubCreated)
    await facts.club_created(session, fact.club_id, fact.owner_id, fact.seq)


async def on_club_closed(session: AsyncSession, event: CloudEvent) -> None:
    fact = msgspec.convert(event.data, _ClubFact)
    await facts.club_closed(session, fact.club_id, fact.seq)


async def on_member(session: AsyncSession, event: CloudEvent) -> None:
    fact = msgspec.convert(event.data, MemberFact)
    await facts.membership(
        session,
        club_id=fact.club_id,
        player_id=fact.player_id,
        role=fact.role,
        agent_id=fact.agent_id,
        active=True,
        seq=fact.seq,
    )


async def on_member_left(session: AsyncSession, event: CloudEvent) -> None:
    fact = msgspec.convert(event.data, MemberFact)
    await facts.member_left(session, club_id=fact.club_id, player_id=fact.player_id, seq=fact.seq)


async def on_union_joined(session: AsyncSession, event: CloudEvent) -> None:
    fact = msgspec.convert(event.data, UnionFact)
    await facts.union_membership(session, union_id=fact.union_id, club_id=fact.club_id, active=True, seq=fact.seq)


async def on_union_left(session: AsyncSession, event: CloudEvent) -> None:
    fact = msgspec.convert(event.data, UnionFact)
    await facts.union_membership(session, union_id=fact.union_id, club_id=fact.club_id, active=False, seq=fact.seq)


def deal_from(fact: DealChanged) -> Deal:
    return Deal(
        club_id=str(fact.club_id),
        union_id=str(fact.union_id) if fact.union_id else None,
        version=fact.version,
        union_bps=fact.union_bps,
        club_bps=fact.club_bps,
        player_bps=fact.player_bps,
        agents=tuple(
            AgentDeal(
                agent_id=str(a.agent_id),
                parent_agent_id=str(a.parent_agent_id) if a.parent_agent_id else None,
                bps=a.bps,
                player_bps=a.player_bps,
            )
            for a in fact.agents
        ),
        effective_from=fact.effective_from,
    )


async def on_deal_changed(session: AsyncSession, event: CloudEvent) -> None:
    await facts.deal_changed(session, deal_from(msgspec.convert(event.data, DealChanged)))


async def on_transfer_posted(session: AsyncSession, event: CloudEvent) -> None:
    posted = msgspec.convert(event.data, TransferPosted)
    payout_id = posted.metadata.get("payout_id")
    if posted.code == "rakeback_payout" and isinstance(payout_id, str):
        await complete_payout(session, uuid.UUID(payout_id), posted.transfer_id)


def event_handlers(
    period: timedelta = facts.WEEK, tiers: Mapping[str, list[Tier]] = DEFAULT_TIERS
) -> dict[str, Handler]:
    """The handlers of the events this service consumes, for payout periods of ``period`` (``tiers``: the
    tier tables public tables' rakes were accrued by, to reverse a refunded fee's parts)."""

    async def on_hands(session: AsyncSession, events: Sequence[CloudEvent]) -> None:
        await on_hands_completed(session, events, period)

    async def on_fee(session: AsyncSession, event: CloudEvent) -> None:
        await on_entry_fee_paid(session, event, period)

    async def on_fee_refunded(session: AsyncSession, event: CloudEvent) -> None:
        await on_entry_fee_refunded(session, event, period, tiers)

    on_hands.__name__ = "on_hands_completed"
    on_fee.__name__ = "on_entry_fee_paid"
    on_fee_refunded.__name__ = "on_entry_fee_refunded"
    return {
        # One hand at a time, like any handler; the kit's consumer gives a batch's hands to on_hands at once.
        "lobby.hand_completed": handles_batches(on_hands),
        ENTRY_FEE_PAID: on_fee,
        ENTRY_FEE_REFUNDED: on_fee_refunded,
        "club.created": on_club_created,
        "club.closed": on_club_closed,
        "club.member_joined": on_member,
        "club.member_updated": on_member,
        "club.member_left": on_member_left,
        "club.union_joined": on_union_joined,
        "club.union_left": on_union_left,
        "club.deal_changed": on_deal_changed,
        "wallet.transfer_posted": on_transfer_posted,
    }


# Weekly payout periods (the default settings): what tests and benchmarks use.
HANDLERS = event_handlers()
on_hand_completed = HANDLERS["lobby.hand_completed"]
