"""A tournament fee given back (``event.entry_fee_refunded``): its accrual is reversed exactly, once per fee
whatever the envelopes or their order; a paid one is taken from the next period's payouts."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import aio_pika
import msgspec
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from tablium_rakeback.db.models import MESSAGING
from tablium_rakeback.domain.periods import Period, period_of
from tablium_rakeback.events.entry_fee_refunds import ENTRY_FEE_REFUNDED, on_entry_fee_refunded
from tablium_rakeback.events.handlers import HANDLERS
from tablium_rakeback.services import statements
from tablium_rakeback.services.scheduler import run_period
from tablium_rakeback.settings import RakebackSettings

from tablium_kit.messaging import CloudEvent, Consumer
from tablium_kit.messaging.testing import AmqpNames, signed_message

from .conftest import deal, deliver, event, hand, member
from .test_entry_fees import fee_paid, parts_of

Sessions = async_sessionmaker[AsyncSession]
WEEK = timedelta(days=7)


def week(day: datetime) -> Period:
    return period_of(day, WEEK)


def refund_of(paid: CloudEvent, *, at: datetime) -> CloudEvent:
    """``event.entry_fee_refunded`` for the fee ``paid`` states (the same fields, docs/events/event.md)."""
    data: dict[str, Any] = dict(paid.data)
    return event("event.entry_fee_refunded", data, at=at, subject=data["purchase_id"])


def purchase_of(paid: CloudEvent) -> str:
    purchase: str = paid.data["purchase_id"]
    return purchase


async def status_of(sessions: Sessions, hand_id: str) -> str | None:
    async with sessions() as session:
        status: str | None = await session.scalar(text("SELECT status FROM rakes WHERE hand_id = :h"), {"h": hand_id})
        return status


async def payouts_to(sessions: Sessions, period: Period, beneficiary: uuid.UUID) -> list[int]:
    async with sessions() as session:
        rows = await session.scalars(
            text("SELECT amount FROM payouts WHERE period_start = :p AND beneficiary = :b"),
            {"p": period.start, "b": str(beneficiary)},
        )
        return [int(amount) for amount in rows]


async def unpaid_totals(sessions: Sessions, period: Period) -> dict[tuple[str, str], tuple[int, int]]:
    """The receivers' unpaid totals of ``period``: (hands, parts) by receiver."""
    async with sessions() as session:
        rows = await session.execute(
            text(
                "SELECT kind, beneficiary, hands, amount FROM accrual_totals "
                "WHERE period_start = :p AND payout_id IS NULL"
            ),
            {"p": period.start},
        )
        return {(kind, beneficiary): (int(hands), int(amount)) for kind, beneficiary, hands, amount in rows}


async def _club(sessions: Sessions, club: uuid.UUID, player: uuid.UUID, since: datetime) -> None:
    await deliver(sessions, member(club, player, 1))
    await deliver(sessions, deal(club, 1, since, 2, club_bps=2000, player_bps=700))


async def test_an_unpaid_fee_refunded_leaves_no_accrual_once_whatever_the_envelopes(sessions: Sessions) -> None:
    club, player = uuid.uuid4(), uuid.uuid4()
    at = datetime(2026, 3, 4, 12, tzinfo=UTC)
    await _club(sessions, club, player, at - timedelta(days=30))
    paid = fee_paid(player, 1_000_003, at=at, club_id=club)
    assert await deliver(sessions, paid)
    assert sum((await parts_of(sessions, purchase_of(paid))).values()) == 1_000_003
    refunded = refund_of(paid, at=at + timedelta(hours=2))
    assert await deliver(sessions, refunded)
    assert await parts_of(sessions, purchase_of(paid)) == {}, "every receiver's part is gone"
    assert await status_of(sessions, purchase_of(paid)) == "refunded"
    assert not await deliver(sessions, refunded), "the inbox skips a redelivery"
    again = msgspec.structs.replace(refunded, id=uuid.uuid4())
    assert await deliver(sessions, again)
    async with sessions() as session:
        await HANDLERS[ENTRY_FEE_REFUNDED](session, again)  # the handler alone, once more
        await session.commit()
    assert not await deliver(sessions, paid), "the fee's own redelivery is skipped..."
    assert await deliver(sessions, msgspec.structs.replace(paid, id=uuid.uuid4()))  # ...and a new envelope of it
    assert await parts_of(sessions, purchase_of(paid)) == {}, "nothing accrues again"
    assert await unpaid_totals(sessions, week(at)) == {}, "no total left, and no reversal: none was paid"
    # A late deal version re-evaluates the club's rakes: a refunded one stays refunded.
    await deliver(sessions, deal(club, 2, at - timedelta(days=1), 3, club_bps=3000, player_bps=700))
    assert await parts_of(sessions, purchase_of(paid)) == {}


async def test_a_refund_arriving_before_its_fee_leaves_the_fee_unaccrued(sessions: Sessions) -> None:
    club, player = uuid.uuid4(), uuid.uuid4()
    at = datetime(2026, 3, 5, 12, tzinfo=UTC)
    await _club(sessions, club, player, at - timedelta(days=30))
    paid = fee_paid(player, 5_000, at=at, club_id=club)
    assert await deliver(sessions, refund_of(paid, at=at + timedelta(minutes=1)))
    assert await deliver(sessions, paid)
    assert await parts_of(sessions, purchase_of(paid)) == {}
    assert await status_of(sessions, purchase_of(paid)) == "refunded"


async def test_a_paid_fees_refund_is_taken_from_the_next_payouts_and_a_negative_balance_carries_on(
    sessions: Sessions, settings: RakebackSettings
) -> None:
    club, player = uuid.uuid4(), uuid.uuid4()
    first, second, third = (week(datetime(2026, 4, day, tzinfo=UTC)) for day in (8, 15, 22))
    await _club(sessions, club, player, first.start - timedelta(days=30))
    fee = 1_000_000
    paid = fee_paid(player, fee, at=first.start + timedelta(days=1), club_id=club)
    await deliver(sessions, paid)
    original = await parts_of(sessions, purchase_of(paid))
    assert (await run_period(sessions, settings, first)).created
    assert await payouts_to(sessions, first, club) == [original[("club", str(club))]]
    assert await payouts_to(sessions, first, player) == [original[("player", str(player))]]

    # Cancelled in the first week, but its refund handled after that week was paid: it lands in the second.
    refunded = refund_of(paid, at=first.start + timedelta(days=2))
    await deliver(sessions, refunded)
    await deliver(sessions, msgspec.structs.replace(refunded, id=uuid.uuid4()))  # another envelope: once
    reversal = await unpaid_totals(sessions, second)
    assert reversal == {key: (0, -amount) for key, amount in original.items()}, "each part negated, no hand"
    assert await payouts_to(sessions, first, club) == [original[("club", str(club))]], "the paid period stays paid"
    assert await parts_of(sessions, purchase_of(paid)) == {}, "the audit: the fee was given back"
    async with sessions() as session:
        stated = await statements.lines(session, "club", club, second)
    assert [(line.player_id, line.rake, line.amount) for line in stated] == [
        (player, -fee, -original[("club", str(club))])
    ], "the club's statement of the second week shows the fee given back"

    # Nothing else earned in the second week: nobody is paid a negative amount; the reversal carries on.
    await run_period(sessions, settings, second)
    assert await payouts_to(sessions, second, club) == []
    assert await payouts_to(sessions, second, player) == []
    # The third week's hand: its parts less the reversal.
    played = hand({player: 3_000_000}, at=third.start + timedelta(days=1), club_id=club)
    await deliver(sessions, played)
    earned = await parts_of(sessions, str(played.data["hand_id"]))
    await run_period(sessions, settings, third)
    for kind, receiver in (("club", club), ("player", player)):
        net = earned[(kind, str(receiver))] - original[(kind, str(receiver))]
        assert net > 0
        assert await payouts_to(sessions, third, receiver) == [net]
    # Over the three weeks each receiver was paid exactly the hand's part: the fee is as if never paid.
    paid_in_all = 0
    for period in (first, second, third):
        paid_in_all += sum(await payouts_to(sessions, period, club))
    assert paid_in_all == earned[("club", str(club))]


async def test_a_refunded_public_fee_accrues_nothing_and_does_not_count_towards_the_tier(
    sessions: Sessions, settings: RakebackSettings
) -> None:
    public = uuid.uuid4()
    period = week(datetime(2026, 5, 13, tzinfo=UTC))
    at = period.start + timedelta(days=1)
    # 150 USDT of fees would make silver (from 100 USDT) at the run; given back, the hand stays at bronze's 10%.
    paid = fee_paid(public, 150_000_000, at=at)
    await deliver(sessions, paid)
    await deliver(sessions, refund_of(paid, at=at + timedelta(hours=1)))
    played = hand({public: 2_000_000}, at=at + timedelta(hours=2))
    await deliver(sessions, played)
    await run_period(sessions, settings, period)
    assert await parts_of(sessions, purchase_of(paid)) == {}
    player_part = (await parts_of(sessions, str(played.data["hand_id"])))[("player", str(public))]
    assert player_part == 2_000_000 * 1000 // 10_000
    assert await payouts_to(sessions, period, public) == [player_part]


async def test_through_rabbitmq_a_fee_and_its_refund_each_delivered_twice_leave_nothing(
    sessions: Sessions, settings: RakebackSettings, amqp_names: AmqpNames
) -> None:
    consumer = Consumer(settings, sessions, MESSAGING, queues=amqp_names.service_queues("rakeback"), retry_delay=0.1)
    for event_type, handler in HANDLERS.items():
        consumer.handler(event_type)(handler)
    await consumer.start()
    try:
        club, player = uuid.uuid4(), uuid.uuid4()
        at = datetime(2026, 3, 11, tzinfo=UTC)
        paid = fee_paid(player, 77_777, at=at, club_id=club)
        refunded = refund_of(paid, at=at + timedelta(hours=1))
        facts = [
            refunded,
            paid,
            member(club, player, 1),
            paid,
            refunded,
            msgspec.structs.replace(refunded, id=uuid.uuid4()),
            deal(club, 1, at - timedelta(days=9), 2, club_bps=2500, player_bps=1000),
        ]
        connection = await aio_pika.connect(amqp_names.url)
        async with connection:
            channel = await connection.channel(publisher_confirms=True)
            exchange = await channel.declare_exchange(amqp_names.exchange, aio_pika.ExchangeType.TOPIC, durable=True)
            for fact in facts:
                message = signed_message(msgspec.json.encode(fact), message_id=str(fact.id))
                await exchange.publish(message, routing_key=fact.type)
        async with asyncio.timeout(20):
            while True:
                async with sessions() as session:
                    handled = await session.scalar(
                        text("SELECT count(*) FROM inbox WHERE consumer = 'rakeback' AND event_id = ANY(:ids)"),
                        {"ids": list({fact.id for fact in facts})},
                    )
                if handled == len({fact.id for fact in facts}):
                    break
                await asyncio.sleep(0.1)
        assert await parts_of(sessions, purchase_of(paid)) == {}
        assert await status_of(sessions, purchase_of(paid)) == "refunded"
    finally:
        await consumer.stop()


async def test_a_refunded_fee_accrued_by_a_tier_no_longer_configured_is_refused_not_left_paid(
    sessions: Sessions, settings: RakebackSettings
) -> None:
    public = uuid.uuid4()
    period = week(datetime(2026, 6, 10, tzinfo=UTC))
    paid = fee_paid(public, 1_000_000, at=period.start + timedelta(days=1))
    await deliver(sessions, paid)
    await run_period(sessions, settings, period)  # accrued by tier, and paid
    refunded = refund_of(paid, at=period.end + timedelta(hours=1))
    async with sessions() as session:
        with pytest.raises(LookupError):
            await on_entry_fee_refunded(session, refunded, WEEK, {})  # the tier tables without that tier
        await session.rollback()
    assert await status_of(sessions, purchase_of(paid)) == "accrued"
