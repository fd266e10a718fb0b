"""Accrual from hand and club facts: the same facts in any order, any number of times, give one result."""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import aio_pika
import msgspec
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from tablium_rakeback.db.models import MESSAGING
from tablium_rakeback.events.handlers import HANDLERS, on_hands_completed
from tablium_rakeback.settings import RakebackSettings

from tablium_kit.messaging import CloudEvent, Consumer
from tablium_kit.messaging.testing import AmqpNames, signed_message

from .conftest import assert_totals_are_the_hands, deal, deliver, event, hand, hand_parts, member

BASE = datetime(2026, 11, 3, tzinfo=UTC)


class Scenario:
    """A club with an agent and sub-agent, a second club, both in a union; deals in two versions; hands at
    the club's table, at a union table and at a public table. Fresh ids each time, named for comparing."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        club, other, union = self.id("club"), self.id("club2"), self.id("union")
        agent, sub, p1, p2, p3, q = (self.id(n) for n in ("agent", "sub", "p1", "p2", "p3", "q"))
        agents = [
            {"agent_id": str(agent), "parent_agent_id": None, "bps": 2500, "player_bps": 1500},
            {"agent_id": str(sub), "parent_agent_id": str(agent), "bps": 2000, "player_bps": 1200},
        ]
        self.club_facts: list[CloudEvent] = [
            member(club, agent, 1, role="agent"),
            member(club, sub, 2, role="agent", agent=agent),
            member(club, p1, 3, agent=sub),
            member(club, p2, 4),
            member(other, q, 1),
            event("club.union_joined", {"union_id": str(union), "club_id": str(club), "seq": 1}),
            event("club.union_joined", {"union_id": str(union), "club_id": str(other), "seq": 2}),
            deal(club, 1, BASE, 5, club_bps=3000, player_bps=1000, union=(union, 4000), agents=agents),
            # Version 2 from day 2: the club keeps less, its players get more.
            deal(
                club, 2, BASE + timedelta(days=2), 6, club_bps=3000, player_bps=2000, union=(union, 4500), agents=agents
            ),
            deal(other, 1, BASE, 3, club_bps=2000, player_bps=500, union=(union, 3000)),
            # p2 leaves after the hands: its hands still accrue as a member's, whichever fact arrives first.
            event("club.member_left", {"club_id": str(club), "player_id": str(p2), "reason": "left", "seq": 10}),
        ]
        self.hands = [
            hand({p1: 1001, p2: 333}, at=BASE + timedelta(days=1), club_id=club, hand_id=self.id("h1")),
            hand({p1: 777, p2: 5}, at=BASE + timedelta(days=3), club_id=club, hand_id=self.id("h2")),
            hand({p1: 999, q: 12345}, at=BASE + timedelta(days=1), club_id=club, union_id=union, hand_id=self.id("h3")),
            hand({p3: 500}, at=BASE + timedelta(days=1), hand_id=self.id("h4"), with_club_fields=False),
        ]

    def id(self, name: str) -> uuid.UUID:
        value = uuid.uuid4()
        self.names[str(value)] = name
        return value

    def facts(self) -> list[CloudEvent]:
        return [*self.club_facts, *self.hands]

    async def result(self, sessions: async_sessionmaker[AsyncSession]) -> list[tuple[Any, ...]]:
        """Each hand's parts (the audit, computed from the rake rows) and each rake's status and deal version;
        and the totals must be exactly those parts added up."""
        await assert_totals_are_the_hands(sessions)
        hand_ids = [h.data["hand_id"] for h in self.hands]
        parts = await hand_parts(sessions, [uuid.UUID(h) for h in hand_ids])
        async with sessions() as session:
            rakes = await session.execute(
                text(
                    "SELECT hand_id::text, player_id::text, status, deal_version FROM rakes "
                    "WHERE hand_id::text = ANY(:h)"
                ),
                {"h": hand_ids},
            )
        name = self.names.get
        return sorted(
            [(name(str(h)), name(str(p)), k, name(b, b), a) for (h, p, k, b), a in parts.items()]
            + [(name(h), name(p), s, v) for h, p, s, v in rakes]  # type: ignore[misc]
        )

    async def totals(self, sessions: async_sessionmaker[AsyncSession]) -> list[tuple[Any, ...]]:
        """What statements and payouts read: the totals of this scenario's receivers, by name."""
        async with sessions() as session:
            rows = await session.execute(
                text(
                    "SELECT kind, beneficiary, player_id::text, sum(hands), sum(rake), sum(amount) FROM accrual_totals "
                    "WHERE player_id::text = ANY(:p) GROUP BY 1, 2, 3"
                ),
                {"p": list(self.names)},
            )
        name = self.names.get
        return sorted((k, name(b, b), name(p), int(h), int(r), int(a)) for k, b, p, h, r, a in rows)


async def test_the_deal_in_force_at_the_hands_time_splits_its_rake(sessions: async_sessionmaker[AsyncSession]) -> None:
    scenario = Scenario()
    for fact in scenario.facts():
        assert await deliver(sessions, fact)
    result = await scenario.result(sessions)
    parts = {(h, p, k, b): a for h, p, k, b, a in (r for r in result if len(r) == 5)}
    # h1, day 1, version 1, at the club's own table (no union part): p1 under sub under agent.
    assert [
        parts[("h1", "p1", k, b)]
        for k, b in [("platform", "platform"), ("club", "club"), ("agent", "agent"), ("agent", "sub"), ("player", "p1")]
    ] == [701, 50, 50, 80, 120]
    assert sum(a for (h, p, _, _), a in parts.items() if (h, p) == ("h1", "p1")) == 1001
    # h2, day 3: version 2 (player_bps 2000 for a member without agent).
    assert parts[("h2", "p2", "player", "p2")] == 1
    assert parts[("h2", "p1", "player", "p1")] == 93  # the sub-agent's player_bps: 1200
    # h3, a union table: each player through their own club's deal, the union takes its part.
    assert parts[("h3", "q", "union", "union")] == 1234  # (3000 - 2000) bps of 12345, rounded
    assert parts[("h3", "q", "club", "club2")] == 1852
    assert parts[("h3", "p1", "union", "union")] == 100
    # h4, a public table (a lobby payload without club fields): waits for its period's run, by tier.
    assert ("h4", "p3", "tier", None) in result


async def test_the_same_facts_twice_and_in_any_order_change_nothing(sessions: async_sessionmaker[AsyncSession]) -> None:
    reference = Scenario()
    for fact in reference.facts():
        await deliver(sessions, fact)
    expected = await reference.result(sessions)
    expected_totals = await reference.totals(sessions)
    orders = ["hands first", *(f"shuffled {n}" for n in range(4))]
    for order in orders:
        scenario = Scenario()
        facts = scenario.facts()
        if order == "hands first":
            facts = scenario.hands + scenario.club_facts[::-1]
        else:
            random.Random(order).shuffle(facts)
        # Every fact delivered twice (a redelivery), and stated again in a new envelope.
        again = [msgspec.structs.replace(f, id=uuid.uuid4()) for f in facts]
        for fact in facts:
            assert await deliver(sessions, fact)
            assert not await deliver(sessions, fact)
        for fact in again:
            await deliver(sessions, fact)
        assert await scenario.result(sessions) == expected, order
        assert await scenario.totals(sessions) == expected_totals, order


async def test_hands_accrued_together_in_a_consumer_batch_give_what_one_by_one_gives(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """The consumer hands a batch's hand events to ``on_hands_completed`` at once: duplicates, the same hand
    in another envelope and hands waiting for club facts come out as if delivered one after another."""
    reference = Scenario()
    for fact in reference.facts():
        await deliver(sessions, fact)
    expected = await reference.result(sessions)
    for hands_first in (False, True):
        scenario = Scenario()
        if not hands_first:
            for fact in scenario.club_facts:
                await deliver(sessions, fact)
        batch = [*scenario.hands, *(msgspec.structs.replace(h, id=uuid.uuid4()) for h in scenario.hands)]
        random.Random(1).shuffle(batch)
        async with sessions() as session, session.begin():
            await on_hands_completed(session, batch)
        if hands_first:
            for fact in scenario.club_facts:
                await deliver(sessions, fact)
        assert await scenario.result(sessions) == expected, hands_first


async def test_an_older_membership_fact_arriving_late_changes_nothing(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    club, player, agent = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await deliver(sessions, member(club, player, 5, agent=agent))
    await deliver(sessions, member(club, player, 2))  # seq 2 < 5: ignored
    async with sessions() as session:
        row = (
            await session.execute(text("SELECT agent_id, seq FROM members WHERE player_id = :p"), {"p": player})
        ).one()
    assert row == (agent, 5)


async def test_an_invalid_deal_is_refused(sessions: async_sessionmaker[AsyncSession]) -> None:
    bad = deal(uuid.uuid4(), 1, BASE, 1, club_bps=1000, player_bps=2000)
    with pytest.raises(ValueError, match="player_bps"):
        await deliver(sessions, bad)  # the consumer retries it, then dead-letters it


async def test_through_rabbitmq_a_hand_before_its_club_facts_and_delivered_twice_accrues_once(
    sessions: async_sessionmaker[AsyncSession], settings: RakebackSettings, amqp_names: AmqpNames
) -> None:
    consumer = Consumer(settings, sessions, MESSAGING, queues=amqp_names.service_queues("rakeback"), retry_delay=0.1)
    for event_type, handler in HANDLERS.items():
        consumer.handler(event_type)(handler)
    await consumer.start()
    try:
        club, player = uuid.uuid4(), uuid.uuid4()
        played = hand({player: 1000}, at=BASE + timedelta(days=1), club_id=club)
        connection = await aio_pika.connect(amqp_names.url)
        async with connection:
            channel = await connection.channel(publisher_confirms=True)
            exchange = await channel.declare_exchange(amqp_names.exchange, aio_pika.ExchangeType.TOPIC, durable=True)
            facts = [
                played,
                played,
                msgspec.structs.replace(played, id=uuid.uuid4()),
                deal(club, 1, BASE, 2, club_bps=2000, player_bps=1000),
                member(club, player, 1),
            ]
            for fact in facts:
                message = signed_message(msgspec.json.encode(fact), message_id=str(fact.id))
                await exchange.publish(message, routing_key=fact.type)

        async def accrued() -> bool:
            async with sessions() as session:
                status = await session.scalar(text("SELECT status FROM rakes WHERE player_id = :p"), {"p": player})
            return status == "accrued"

        async with asyncio.timeout(20):
            while not await accrued():  # noqa: ASYNC110 - polling the consumer's effect
                await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)  # the duplicates, handled meanwhile or after: nothing more
        async with sessions() as session:
            parts = (
                await session.execute(
                    text("SELECT kind, hands, amount FROM accrual_totals WHERE player_id = :p"), {"p": player}
                )
            ).all()
        assert {k: (h, int(v)) for k, h, v in parts} == {"platform": (1, 800), "club": (1, 100), "player": (1, 100)}
    finally:
        await consumer.stop()


async def test_rakeback_accrued_states_each_rakes_audited_parts(sessions: async_sessionmaker[AsyncSession]) -> None:
    """The events of a batch (whose entries are encoded along each chain's JSON, encoded once) state, per
    hand and player, the deal version and the parts the audit splits from the rake row: the highest version
    stated per (hand, player) is the one in force, with exactly its parts."""
    scenario = Scenario()
    for fact in scenario.club_facts[:-3]:  # every fact but the deals' second version, the other club's, p2's leave
        await deliver(sessions, fact)
    async with sessions() as session, session.begin():
        await on_hands_completed(session, scenario.hands)
    for fact in scenario.club_facts[-3:]:  # version 2 and the other club's deal re-evaluate some rakes
        await deliver(sessions, fact)
    async with sessions() as session:
        envelopes = (
            await session.scalars(text("SELECT envelope FROM outbox WHERE type = 'rakeback.accrued' ORDER BY seq"))
        ).all()
    stated: dict[tuple[str, str], dict[str, Any]] = {}
    ours = {h.data["hand_id"] for h in scenario.hands}
    for envelope in envelopes:
        data = envelope["data"]
        if data["hand_id"] not in ours:
            continue  # another test's, in the same database
        assert envelope["subject"] == data["hand_id"]
        for entry in data["accruals"]:
            key = (data["hand_id"], entry["player_id"])
            if key not in stated or stated[key]["deal_version"] < entry["deal_version"]:
                stated[key] = {**entry, "table_id": data["table_id"], "union_id": data["union_id"]}
    audited = await hand_parts(sessions, [uuid.UUID(h.data["hand_id"]) for h in scenario.hands])
    expected = {}
    for (hand_id, player, kind, beneficiary), amount in audited.items():
        expected.setdefault((str(hand_id), str(player)), []).append((kind, str(beneficiary), amount))
    club_rakes = {key: parts for key, parts in expected.items() if key[0] != scenario.hands[3].data["hand_id"]}
    assert set(stated) == set(club_rakes)  # the public table's rake is stated at its period's run
    for key, entry in stated.items():
        assert sorted((p["kind"], p["beneficiary"], int(p["amount"])) for p in entry["parts"]) == sorted(
            club_rakes[key]
        ), key
        assert sum(int(p["amount"]) for p in entry["parts"]) == int(entry["rake"])
        assert sum(p["bps"] for p in entry["parts"]) == 10_000
    assert {e["deal_version"] for e in stated.values()} == {1, 2}
