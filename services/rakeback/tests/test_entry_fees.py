"""Tournament fees (``event.entry_fee_paid``) accrue exactly like a hand's rake: the same split under the
deal in force at the purchase's time, once per purchase under redelivery, and tiers count them."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import aio_pika
import msgspec
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from tablium_rakeback.db.models import MESSAGING
from tablium_rakeback.domain.periods import period_of
from tablium_rakeback.events.entry_fees import on_entry_fee_paid
from tablium_rakeback.events.handlers import HANDLERS
from tablium_rakeback.services.scheduler import run_period
from tablium_rakeback.settings import RakebackSettings

from tablium_kit.messaging import CloudEvent, Consumer
from tablium_kit.messaging.testing import AmqpNames, signed_message

from .conftest import assert_totals_are_the_hands, deal, deliver, event, hand, hand_parts, member

WEEK = period_of(datetime(2026, 9, 16, tzinfo=UTC), timedelta(days=7))
Sessions = async_sessionmaker[AsyncSession]


def fee_paid(
    player: uuid.UUID,
    fee: int,
    *,
    at: datetime,
    club_id: uuid.UUID | None = None,
    union_id: uuid.UUID | None = None,
    purchase_id: uuid.UUID | None = None,
    kind: str = "entry",
) -> CloudEvent:
    """``event.entry_fee_paid`` as the event service writes it (docs/events/event.md)."""
    purchase = purchase_id or uuid.uuid4()
    data = {
        "tournament_id": str(uuid.uuid4()),
        "seq": 3,
        "purchase_id": str(purchase),
        "kind": kind,
        "player_id": str(player),
        "entry_id": None,
        "club_id": str(club_id) if club_id else None,
        "union_id": str(union_id) if union_id else None,
        "asset": "USDT",
        "fee": str(fee),
    }
    return event("event.entry_fee_paid", data, at=at, subject=str(purchase))


async def parts_of(sessions: Sessions, hand_id: str) -> dict[tuple[str, str], int]:
    """The audit of one hand (or purchase): its parts by receiver."""
    parts = await hand_parts(sessions, [uuid.UUID(hand_id)])
    return {(kind, beneficiary): amount for (_, _, kind, beneficiary), amount in parts.items()}


def _data(fact: CloudEvent) -> dict[str, Any]:
    data: dict[str, Any] = fact.data
    return data


async def test_a_club_tournaments_fee_splits_as_a_hands_rake_under_the_deal_of_its_time(sessions: Sessions) -> None:
    club, agent, player = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    agents = [{"agent_id": str(agent), "parent_agent_id": None, "bps": 2500, "player_bps": 1500}]
    start = WEEK.start - timedelta(days=20)
    for fact in (
        member(club, agent, 1, role="agent"),
        member(club, player, 2, agent=agent),
        deal(club, 1, start, 3, club_bps=3000, player_bps=1000, agents=agents),
        deal(club, 2, start + timedelta(days=10), 4, club_bps=4000, player_bps=1000, agents=agents),
    ):
        await deliver(sessions, fact)
    fee, at = 1_234_567, start + timedelta(days=5)  # under version 1
    paid = fee_paid(player, fee, at=at, club_id=club)
    same = hand({player: fee}, at=at, club_id=club)  # a hand with the same rake, at the same time
    for fact in (paid, same):
        assert await deliver(sessions, fact)
    fee_parts = await parts_of(sessions, _data(paid)["purchase_id"])
    assert fee_parts == await parts_of(sessions, _data(same)["hand_id"]), "exactly like a hand's rake"
    assert sum(fee_parts.values()) == fee, "the parts sum to the fee exactly"
    assert fee_parts[("club", str(club))] == 61_728  # 3000 - 2500 bps of 1,234,567 under version 1 (not 4000)
    async with sessions() as session:
        version = await session.scalar(
            text("SELECT deal_version FROM rakes WHERE hand_id = :h"), {"h": _data(paid)["purchase_id"]}
        )
    assert version == 1
    accrued = [e for _, e in await _outbox(sessions, "rakeback.accrued") if e["hand_id"] == _data(paid)["purchase_id"]]
    assert len(accrued) == 1
    assert accrued[0]["accruals"][0]["rake"] == str(fee)


async def test_the_same_fee_delivered_again_or_in_another_envelope_accrues_once(sessions: Sessions) -> None:
    club, player = uuid.uuid4(), uuid.uuid4()
    await deliver(sessions, member(club, player, 1))
    await deliver(sessions, deal(club, 1, WEEK.start - timedelta(days=30), 2, club_bps=2000, player_bps=700))
    paid = fee_paid(player, 10**30 + 7, at=WEEK.start - timedelta(days=1), club_id=club)  # beyond 64 bits
    assert await deliver(sessions, paid)
    assert not await deliver(sessions, paid), "the inbox skips a redelivery"
    again = msgspec.structs.replace(paid, id=uuid.uuid4())
    assert await deliver(sessions, again), "a new envelope passes the inbox..."
    async with sessions() as session:
        await on_entry_fee_paid(session, again)  # ...and the handler alone, again: nothing more
        await session.commit()
    parts = await parts_of(sessions, _data(paid)["purchase_id"])
    assert sum(parts.values()) == 10**30 + 7
    # Largest remainder: the player's 0.49 unit is the smallest remainder, so rounded down; club and platform up.
    assert parts[("player", str(player))] == (10**30 + 7) * 700 // 10_000
    assert parts[("club", str(club))] == (10**30 + 7) * 1300 // 10_000 + 1
    async with sessions() as session:
        rows = (
            await session.execute(text("SELECT kind, hands FROM accrual_totals WHERE player_id = :p"), {"p": player})
        ).all()
    assert sorted(rows) == [("club", 1), ("platform", 1), ("player", 1)]  # once
    await assert_totals_are_the_hands(sessions)


async def test_a_fee_before_its_membership_waits_and_a_public_fee_counts_towards_the_tier(
    sessions: Sessions, settings: RakebackSettings
) -> None:
    club, member_player, public = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    at = WEEK.start + timedelta(days=1)
    early = fee_paid(member_player, 5_000, at=at, club_id=club)
    await deliver(sessions, early)
    assert not await parts_of(sessions, _data(early)["purchase_id"]), "pending: the membership is not known yet"
    await deliver(sessions, deal(club, 1, WEEK.start - timedelta(days=3), 2, club_bps=1000, player_bps=500))
    await deliver(sessions, member(club, member_player, 1))
    assert sum((await parts_of(sessions, _data(early)["purchase_id"])).values()) == 5_000

    # A public player: 150 USDT of tournament fees and a hand's 2 USDT of rake make silver (from 100 USDT),
    # which the hand alone would not: its rake accrues at 15%, not bronze's 10%.
    await deliver(sessions, fee_paid(public, 150_000_000, at=at, kind="rebuy"))
    played = hand({public: 2_000_000}, at=at + timedelta(hours=1))
    await deliver(sessions, played)
    result = await run_period(sessions, settings, WEEK)
    assert result.created
    player_part = (await parts_of(sessions, _data(played)["hand_id"]))[("player", str(public))]
    assert player_part == 2_000_000 * 1500 // 10_000
    tiers = [e for _, e in await _outbox(sessions, "rakeback.tier_changed") if e["player_id"] == str(public)]
    assert [(t["tier"], t["rolling_rake"]) for t in tiers] == [("silver", "152000000")]


async def _outbox(sessions: Sessions, type_: str) -> list[tuple[str, dict[str, Any]]]:
    async with sessions() as session:
        rows = await session.execute(
            text("SELECT subject, envelope FROM outbox WHERE type = :t ORDER BY seq"), {"t": type_}
        )
        return [(row[0], row[1]["data"]) for row in rows]


async def test_through_rabbitmq_a_fee_delivered_twice_accrues_once(
    sessions: Sessions, settings: RakebackSettings, amqp_names: AmqpNames
) -> None:
    consumer = Consumer(settings, sessions, MESSAGING, queues=amqp_names.service_queues("rakeback"), retry_delay=0.1)
    for event_type, handler in HANDLERS.items():
        consumer.handler(event_type)(handler)
    await consumer.start()
    try:
        club, player = uuid.uuid4(), uuid.uuid4()
        paid = fee_paid(player, 99_999, at=WEEK.start - timedelta(days=2), club_id=club)
        facts = [
            paid,
            paid,
            msgspec.structs.replace(paid, id=uuid.uuid4()),
            member(club, player, 1),
            deal(club, 1, WEEK.start - timedelta(days=9), 2, club_bps=2500, player_bps=1000),
        ]
        connection = await aio_pika.connect(amqp_names.url)
        async with connection:
            channel = await connection.channel(publisher_confirms=True)
            exchange = await channel.declare_exchange(amqp_names.exchange, aio_pika.ExchangeType.TOPIC, durable=True)
            for fact in facts:
                message = signed_message(msgspec.json.encode(fact), message_id=str(fact.id))
                await exchange.publish(message, routing_key=fact.type)
        purchase = _data(paid)["purchase_id"]
        async with asyncio.timeout(20):
            while not await parts_of(sessions, purchase):  # noqa: ASYNC110 - polling the consumer's effect
                await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)  # the duplicates, handled meanwhile or after: nothing more
        parts = await parts_of(sessions, purchase)
        assert parts == {("platform", "platform"): 74_999, ("club", str(club)): 15_000, ("player", str(player)): 10_000}
    finally:
        await consumer.stop()
