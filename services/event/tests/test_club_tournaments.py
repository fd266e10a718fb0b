"""Club tournaments (issue 14): the event service's own projection of club membership (the club service's
events, applied by its handlers as its consumer runs them, and once through RabbitMQ), club staff creating
and directing, members-only registration (403 problem+json), and a member who leaves before the start
unregistered with their hold given back. The real wallet, Postgres and RabbitMQ."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import aio_pika
import msgspec
import pytest
import test_service
from litestar.testing import AsyncTestClient
from sqlalchemy import select, text
from tablium_event.clients.wallet import Wallet
from tablium_event.db.models import MESSAGING, Registration
from tablium_event.events.handlers import HANDLERS
from tablium_event.services.clubs import LEFT
from tablium_event.services.tournaments import Tournaments
from tablium_event.settings import EventSettings
from test_service import Ledger, SessionFactory, bearer

from tablium_kit.auth import ServiceTokens
from tablium_kit.messaging import CloudEvent, Consumer
from tablium_kit.messaging.testing import AmqpNames, signed_message

wallet_url = test_service.wallet_url
settings = test_service.settings
client = test_service.client
sessions = test_service.sessions
ledger = test_service.ledger
pytestmark = test_service.pytestmark

TOURNAMENT = {"name": "Club night", "buy_in": "1000", "fee": "100", "seats_per_table": 6, "seed": 7}


def club_event(type_: str, data: dict[str, Any]) -> CloudEvent:
    return CloudEvent(
        id=uuid.uuid4(), source="/services/club", type=type_, time=datetime.now(UTC), subject="x", data=data
    )


class ClubEvents:
    """The club service's events, handed to the event service's handlers in a transaction, as its consumer does."""

    def __init__(self, sessions: SessionFactory) -> None:
        self.sessions = sessions
        self.seq: dict[str, int] = {}

    async def deliver(self, type_: str, data: dict[str, Any]) -> None:
        async with self.sessions() as session, session.begin():
            await HANDLERS[type_](session, club_event(type_, data))

    def next_seq(self, subject: str) -> int:
        self.seq[subject] = self.seq.get(subject, 0) + 1
        return self.seq[subject]

    async def joined(self, club: str, player: str, role: str = "member", seq: int | None = None) -> None:
        data = {"club_id": club, "player_id": player, "role": role, "agent_id": None}
        await self.deliver("club.member_joined", {**data, "seq": seq or self.next_seq(club)})

    async def left(self, club: str, player: str, reason: str = "kicked") -> None:
        data = {"club_id": club, "player_id": player, "reason": reason, "seq": self.next_seq(club)}
        await self.deliver("club.member_left", data)

    async def union(self, union: str, club: str, joined: bool = True) -> None:
        data = {"union_id": union, "club_id": club, "seq": self.next_seq(union)}
        await self.deliver("club.union_joined" if joined else "club.union_left", data)


@pytest.fixture
def clubs(sessions: SessionFactory) -> ClubEvents:
    return ClubEvents(sessions)


async def create(client: AsyncTestClient, staff: str, status: int = 201, **body: Any) -> Any:
    response = await client.post("/api/v1/tournaments", json={**TOURNAMENT, **body}, headers=bearer(staff, ["player"]))
    assert response.status_code == status, response.text
    if status >= 400:
        assert response.headers["content-type"].startswith("application/problem+json")
    return response.json()


async def register(client: AsyncTestClient, tournament_id: str, player: str) -> Any:
    return await client.post(f"/api/v1/tournaments/{tournament_id}/registrations", headers=bearer(player, ["player"]))


async def registration_of(sessions: SessionFactory, tournament_id: str, player: str) -> Registration:
    async with sessions() as session:
        reg = await session.scalar(
            select(Registration).where(
                Registration.tournament_id == uuid.UUID(tournament_id), Registration.player_id == uuid.UUID(player)
            )
        )
    assert reg is not None
    return reg


async def reconcile_now(settings: EventSettings, sessions: SessionFactory) -> None:
    """Another instance's reconciler, with no grace period: it finishes the unregistrations at once."""
    quick = msgspec.structs.replace(settings, late_entry_grace_s=0.0)
    reconciler = Tournaments(quick, Wallet(settings.wallet_url, ServiceTokens.from_settings(settings)))
    async with sessions() as session:
        await reconciler.reconcile(session)
        await session.commit()
    await reconciler.wallet.aclose()


async def test_club_staff_create_and_direct_and_only_members_enter(
    client: AsyncTestClient, ledger: Ledger, clubs: ClubEvents
) -> None:
    club, owner, manager, member, outsider = (str(uuid.uuid4()) for _ in range(5))
    await clubs.joined(club, owner, "owner")
    await clubs.joined(club, manager, "manager")
    await clubs.joined(club, member)
    for player in (owner, member, outsider):
        await ledger.fund(player, 5_000)
    refused = await create(client, member, 403, club_id=club)
    assert "owner and managers" in refused["detail"]
    await create(client, outsider, 403, club_id=club)
    await create(client, owner, 403)  # a public tournament is a platform director's
    await create(client, owner, 409, club_id=club, union_wide=True)  # the club is in no union
    await create(client, owner, 409, union_wide=True)  # a union-wide tournament is a club's
    await create(client, owner, 400, club_id="not-a-club")
    await create(client, owner, 400, club_id=club, union_wide="yes")
    created = await create(client, owner, club_id=club)
    tournament_id = created["id"]
    assert (created["club_id"], created["union_id"]) == (club, None)
    url = f"/api/v1/tournaments/{tournament_id}"
    response = await client.post(f"{url}/open", headers=bearer(member, ["player"]))
    assert response.status_code == 403, "a member does not direct"
    assert response.headers["content-type"].startswith("application/problem+json")
    response = await client.post(f"{url}/open", headers=bearer(manager, ["player"]))
    assert response.status_code == 200, response.text

    response = await register(client, tournament_id, outsider)
    assert response.status_code == 403, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "club tournament" in response.json()["detail"]
    assert await ledger.player_balance(outsider) == 5_000, "nothing held"
    for player in (owner, member):
        response = await register(client, tournament_id, player)
        assert response.status_code == 201, response.text
    response = await client.post(f"{url}/start", headers=bearer(manager, ["player"]))
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "running"
    # Another club's staff direct nothing here.
    other_club, other_owner = str(uuid.uuid4()), str(uuid.uuid4())
    await clubs.joined(other_club, other_owner, "owner")
    response = await client.post(f"{url}/pause", headers=bearer(other_owner, ["player"]))
    assert response.status_code == 403


async def test_the_list_shows_a_club_tournaments_club_and_filters_by_club(
    client: AsyncTestClient, ledger: Ledger, clubs: ClubEvents
) -> None:
    club, owner = str(uuid.uuid4()), str(uuid.uuid4())
    await clubs.joined(club, owner, "owner")
    mine = (await create(client, owner, club_id=club))["id"]
    listed = await client.get("/api/v1/tournaments", params={"limit": 200}, headers=bearer(owner, ["player"]))
    assert listed.status_code == 200, listed.text
    (summary,) = [t for t in listed.json() if t["id"] == mine]
    assert (summary["club_id"], summary["union_id"]) == (club, None)
    only = await client.get("/api/v1/tournaments", params={"club_id": club}, headers=bearer(owner, ["player"]))
    assert [t["id"] for t in only.json()] == [mine]
    bad = await client.get("/api/v1/tournaments", params={"club_id": "x"}, headers=bearer(owner, ["player"]))
    assert bad.status_code == 400
    assert bad.headers["content-type"].startswith("application/problem+json")


async def test_a_member_who_leaves_before_the_start_is_unregistered_and_refunded(
    client: AsyncTestClient, ledger: Ledger, clubs: ClubEvents, sessions: SessionFactory, settings: EventSettings
) -> None:
    club, owner, leaver, stayer = (str(uuid.uuid4()) for _ in range(4))
    await clubs.joined(club, owner, "owner")
    joined_seq = clubs.next_seq(club)
    await clubs.joined(club, leaver, seq=joined_seq)
    await clubs.joined(club, stayer)
    accounts = {player: await ledger.fund(player, 5_000) for player in (leaver, stayer)}
    tournament_id = (await create(client, owner, club_id=club))["id"]
    assert (
        await client.post(f"/api/v1/tournaments/{tournament_id}/open", headers=bearer(owner, ["player"]))
    ).status_code == 200
    for player in (leaver, stayer):
        assert (await register(client, tournament_id, player)).status_code == 201
    assert await ledger.available(accounts[leaver]) == 5_000 - 1_100, "held"

    await clubs.left(club, leaver)
    reg = await registration_of(sessions, tournament_id, leaver)
    assert (reg.status, reg.failure) == ("voiding", LEFT)
    # The same fact again, and the older join arriving late, change nothing.
    await clubs.deliver(
        "club.member_left", {"club_id": club, "player_id": leaver, "reason": "kicked", "seq": clubs.seq[club]}
    )
    await clubs.joined(club, leaver, seq=joined_seq)
    await reconcile_now(settings, sessions)
    assert (await registration_of(sessions, tournament_id, leaver)).status == "voided"
    assert await ledger.available(accounts[leaver]) == 5_000, "the hold given back"
    assert await ledger.balance(accounts[leaver]) == 5_000
    assert (await registration_of(sessions, tournament_id, stayer)).status == "held"
    entries = (await client.get(f"/api/v1/tournaments/{tournament_id}/entries")).json()
    assert [e["player_id"] for e in entries] == [stayer]
    response = await register(client, tournament_id, leaver)
    assert response.status_code == 403, "no longer a member"

    # After the start an entry stays: its buy-in is in the pool, its chips in play.
    late = str(uuid.uuid4())
    await clubs.joined(club, late)
    await ledger.fund(late, 5_000)
    assert (await register(client, tournament_id, late)).status_code == 201
    assert (
        await client.post(f"/api/v1/tournaments/{tournament_id}/start", headers=bearer(owner, ["player"]))
    ).status_code == 200
    await clubs.left(club, late, "left")
    assert (await registration_of(sessions, tournament_id, late)).status == "posted"


@pytest.mark.parametrize("reason", ["left", "kicked", "banned"])
async def test_a_member_who_left_buys_no_more_chips_for_the_entry_they_hold(
    client: AsyncTestClient, ledger: Ledger, clubs: ClubEvents, sessions: SessionFactory, reason: str
) -> None:
    club, owner, leaver, stayer = (str(uuid.uuid4()) for _ in range(4))
    await clubs.joined(club, owner, "owner")
    accounts = {}
    for player in (leaver, stayer):
        await clubs.joined(club, player)
        accounts[player] = await ledger.fund(player, 5_000)
    config = test_service.wire({**test_service.REBUYS, "late_reg_until_level": 2})
    tournament_id = (await create(client, owner, club_id=club, **config))["id"]
    url = f"/api/v1/tournaments/{tournament_id}"
    assert (await client.post(f"{url}/open", headers=bearer(owner, ["player"]))).status_code == 200
    for player in (leaver, stayer):
        assert (await register(client, tournament_id, player)).status_code == 201
    assert (await client.post(f"{url}/start", headers=bearer(owner, ["player"]))).status_code == 200
    await clubs.left(club, leaver, reason)
    assert (await registration_of(sessions, tournament_id, leaver)).status == "posted", "the entry stays"
    before = await ledger.available(accounts[leaver])

    for what in ("rebuys", "addons"):
        response = await client.post(
            f"{url}/{what}", json={"request_id": str(uuid.uuid4())}, headers=bearer(leaver, ["player"])
        )
        assert response.status_code == 403, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        assert "club tournament" in response.json()["detail"]
    response = await register(client, tournament_id, leaver)  # a re-entry
    assert response.status_code == 403, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert await ledger.available(accounts[leaver]) == before, "nothing held"
    async with sessions() as session:
        bought = await session.scalar(
            text("SELECT count(*) FROM purchases WHERE tournament_id = :t AND player_id = :p"),
            {"t": tournament_id, "p": leaver},
        )
    assert bought == 0, "no purchase recorded"
    # A member still in the club rebuys as before.
    response = await client.post(
        f"{url}/rebuys", json={"request_id": str(uuid.uuid4())}, headers=bearer(stayer, ["player"])
    )
    assert response.status_code == 201, response.text


async def test_a_union_tournament_admits_the_members_of_the_unions_clubs(
    client: AsyncTestClient, ledger: Ledger, clubs: ClubEvents, sessions: SessionFactory, settings: EventSettings
) -> None:
    union, home, guest, elsewhere = (str(uuid.uuid4()) for _ in range(4))
    owner, guest_member, outsider = (str(uuid.uuid4()) for _ in range(3))
    await clubs.joined(home, owner, "owner")
    await clubs.joined(guest, guest_member)
    await clubs.joined(elsewhere, outsider)
    await clubs.union(union, home)
    await clubs.union(union, guest)
    for player in (guest_member, outsider):
        await ledger.fund(player, 5_000)
    created = await create(client, owner, club_id=home, union_wide=True)
    assert created["union_id"] == union
    tournament_id = created["id"]
    assert (
        await client.post(f"/api/v1/tournaments/{tournament_id}/open", headers=bearer(owner, ["player"]))
    ).status_code == 200
    assert (await register(client, tournament_id, outsider)).status_code == 403
    assert (await register(client, tournament_id, guest_member)).status_code == 201
    await clubs.union(union, guest, joined=False)  # the guest club leaves the union: its members may not enter
    assert (await registration_of(sessions, tournament_id, guest_member)).status == "voiding"
    await reconcile_now(settings, sessions)
    assert (await registration_of(sessions, tournament_id, guest_member)).status == "voided"
    assert await ledger.player_balance(guest_member) == 5_000


async def test_through_rabbitmq_the_projection_admits_a_member(
    client: AsyncTestClient, settings: EventSettings, sessions: SessionFactory, ledger: Ledger, amqp_names: AmqpNames
) -> None:
    """The real consumer on the run's exchange: club events published to RabbitMQ (one twice) reach the
    projection once; the member then enters."""
    consumer = Consumer(settings, sessions, MESSAGING, queues=amqp_names.service_queues("event"), retry_delay=0.1)
    for event_type, handler in HANDLERS.items():
        consumer.handler(event_type)(handler)
    await consumer.start()
    try:
        club, owner, member = (str(uuid.uuid4()) for _ in range(3))
        facts = [
            club_event("club.member_joined", {"club_id": club, "player_id": owner, "role": "owner", "seq": 1}),
            club_event("club.member_joined", {"club_id": club, "player_id": member, "role": "member", "seq": 2}),
        ]
        connection = await aio_pika.connect(amqp_names.url)
        async with connection:
            channel = await connection.channel(publisher_confirms=True)
            exchange = await channel.declare_exchange(amqp_names.exchange, aio_pika.ExchangeType.TOPIC, durable=True)
            for fact in [*facts, facts[1]]:
                message = signed_message(msgspec.json.encode(fact), message_id=str(fact.id))
                await exchange.publish(message, routing_key=fact.type)

        async def projected() -> int:
            async with sessions() as session:
                found = await session.scalar(
                    text("SELECT count(*) FROM club_memberships WHERE club_id = :c AND role IS NOT NULL"), {"c": club}
                )
            return int(found or 0)

        async with asyncio.timeout(20):
            while await projected() < 2:  # noqa: ASYNC110 - polling the consumer's effect
                await asyncio.sleep(0.1)
    finally:
        await consumer.stop()
    await ledger.fund(member, 5_000)
    tournament_id = (await create(client, owner, club_id=club))["id"]
    assert (
        await client.post(f"/api/v1/tournaments/{tournament_id}/open", headers=bearer(owner, ["player"]))
    ).status_code == 200
    assert (await register(client, tournament_id, member)).status_code == 201
