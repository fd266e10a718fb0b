"""Club tables against a running lobby process, the real wallet, Postgres, Redis: the lobby's own projection
of club membership (club events applied by the lobby's handlers, as its consumer runs them), members-only
sit-down, quick seat and watching, a member who left stood up after the hand, club ids in hand events."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import websockets
from lobby_support import Ledger, LobbyProcess, bearer, user_token
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine
from tablium_lobby.bots import POLICIES, Bot
from tablium_lobby.events.handlers import HANDLERS
from test_private import messages_until

from tablium_kit.messaging import CloudEvent

SETTINGS = {"name": "Club game", "small_blind": "1", "big_blind": "2", "seats": 4, "min_buy_in_bb": 20}


@pytest.fixture(scope="module")
async def lobby(start_lobby: Any) -> LobbyProcess:
    process: LobbyProcess = await start_lobby(between_hands_s="0.02")
    return process


@pytest.fixture(scope="module")
async def engine(lobby: LobbyProcess) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(lobby.database_url)
    yield engine
    await engine.dispose()


class ClubEvents:
    """The club service's events, handed to the lobby's handlers in a transaction, as its consumer does."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.seq: dict[str, int] = {}

    async def deliver(self, type_: str, data: dict[str, Any]) -> None:
        event = CloudEvent(
            id=uuid.uuid4(), source="/services/club", type=type_, time=datetime.now(UTC), subject="x", data=data
        )
        async with AsyncSession(self.engine) as session, session.begin():
            await HANDLERS[type_](session, event)

    def next_seq(self, subject: str) -> int:
        self.seq[subject] = self.seq.get(subject, 0) + 1
        return self.seq[subject]

    async def joined(self, club: str, player: str, role: str = "member", seq: int | None = None) -> None:
        data = {"club_id": club, "player_id": player, "role": role, "agent_id": None}
        await self.deliver("club.member_joined", {**data, "seq": seq or self.next_seq(club)})

    async def left(self, club: str, player: str, reason: str = "kicked", seq: int | None = None) -> None:
        data = {"club_id": club, "player_id": player, "reason": reason}
        await self.deliver("club.member_left", {**data, "seq": seq or self.next_seq(club)})

    async def union(self, union: str, club: str, joined: bool = True) -> None:
        data = {"union_id": union, "club_id": club, "seq": self.next_seq(union)}
        await self.deliver("club.union_joined" if joined else "club.union_left", data)


@pytest.fixture
def clubs(engine: AsyncEngine) -> ClubEvents:
    return ClubEvents(engine)


async def club_table(http: httpx.AsyncClient, staff: str, club: str, status: int = 201, **config: Any) -> Any:
    response = await http.post(
        "/api/v1/tables/club", json={**SETTINGS, "club_id": club, **config}, headers=bearer(staff)
    )
    assert response.status_code == status, response.text
    return response.json()


async def test_only_members_sit_quick_seat_and_watch_and_only_staff_open_tables(
    lobby: LobbyProcess, ledger: Ledger, clubs: ClubEvents
) -> None:
    club, owner, member, outsider = (str(uuid.uuid4()) for _ in range(4))
    for player in (member, outsider):
        await ledger.fund(player, 1_000)
    await clubs.joined(club, owner, "owner")
    await clubs.joined(club, member)
    async with httpx.AsyncClient(base_url=lobby.url, timeout=30) as http:
        refused = await club_table(http, member, club, 403)
        assert "owner and managers" in refused["detail"]
        await club_table(http, outsider, club, 403)
        await club_table(http, owner, club, 409, union_wide=True)  # the club is in no union
        table = await club_table(http, owner, club)
        tid = table["id"]
        assert table["club_id"] == club
        assert table["union_id"] is None
        seat = {"seat": 0, "buy_in": "100"}
        no = await http.post(f"/api/v1/tables/{tid}/seats", json=seat, headers=bearer(outsider))
        assert no.status_code == 403
        assert no.headers["content-type"] == "application/problem+json"
        assert "club table" in no.json()["detail"]
        assert (await http.get(f"/api/v1/tables/{tid}/state", headers=bearer(outsider))).status_code == 403
        assert await handshake_status(f"{lobby.ws_url}/api/v1/tables/{tid}/ws", bearer(outsider)) == 403
        quick = {"small_blind": "1", "big_blind": "2", "seats": 4, "buy_in": "100", "club_id": club}
        assert (await http.post("/api/v1/quick-seat", json=quick, headers=bearer(outsider))).status_code == 403
        # The public quick seat never lands at a club table.
        public = {**quick}
        public.pop("club_id")
        answer = await http.post("/api/v1/quick-seat", json=public, headers=bearer(outsider))
        assert answer.status_code == 200, answer.text
        assert answer.json().get("table_id") != tid
        sat = await http.post("/api/v1/quick-seat", json=quick, headers=bearer(member))
        assert sat.status_code == 200, sat.text
        assert sat.json()["table_id"] == tid
        again = await http.post("/api/v1/quick-seat", json=quick, headers=bearer(member))
        assert again.json()["seat"]["seat"] == sat.json()["seat"]["seat"]  # asking again changes nothing
        assert (await http.get(f"/api/v1/tables/{tid}/state", headers=bearer(member))).status_code == 200


async def handshake_status(url: str, headers: dict[str, str]) -> int:
    """The HTTP status a refused WebSocket handshake gets."""
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with websockets.connect(url, additional_headers=headers):
            pass
    return refused.value.response.status_code


async def test_union_tables_seat_members_of_every_club_in_the_union(
    lobby: LobbyProcess, ledger: Ledger, clubs: ClubEvents
) -> None:
    union, home, other = (str(uuid.uuid4()) for _ in range(3))
    owner, guest = str(uuid.uuid4()), str(uuid.uuid4())
    await ledger.fund(guest, 1_000)
    await clubs.joined(home, owner, "manager")
    await clubs.joined(other, guest)
    await clubs.union(union, home)
    async with httpx.AsyncClient(base_url=lobby.url, timeout=30) as http:
        table = await club_table(http, owner, home, union_wide=True)
        assert table["union_id"] == union
        seat = {"seat": 1, "buy_in": "100"}
        assert (
            await http.post(f"/api/v1/tables/{table['id']}/seats", json=seat, headers=bearer(guest))
        ).status_code == 403
        await clubs.union(union, other)
        sat = await http.post(f"/api/v1/tables/{table['id']}/seats", json=seat, headers=bearer(guest))
        assert sat.status_code == 201, sat.text
        assert await ledger.player_balance(guest) == 900
        # The guest's club leaves the union: no hand is running, so the reconciler stands the guest up.
        await clubs.union(union, other, joined=False)
        async with asyncio.timeout(30):
            while await ledger.player_balance(guest) != 1_000:  # noqa: ASYNC110 - another process cashes out
                await asyncio.sleep(0.2)
        assert (
            await http.post(f"/api/v1/tables/{table['id']}/seats", json=seat, headers=bearer(guest))
        ).status_code == 403


async def test_a_closed_club_stands_its_members_up(lobby: LobbyProcess, ledger: Ledger, clubs: ClubEvents) -> None:
    club, owner, member = (str(uuid.uuid4()) for _ in range(3))
    await ledger.fund(member, 1_000)
    await clubs.joined(club, owner, "owner")
    await clubs.joined(club, member)
    async with httpx.AsyncClient(base_url=lobby.url, timeout=30) as http:
        tid = (await club_table(http, owner, club))["id"]
        seat = {"seat": 0, "buy_in": "100"}
        assert (await http.post(f"/api/v1/tables/{tid}/seats", json=seat, headers=bearer(member))).status_code == 201
        await clubs.deliver("club.closed", {"club_id": club, "seq": clubs.next_seq(club)})
        async with asyncio.timeout(30):
            while await ledger.player_balance(member) != 1_000:  # noqa: ASYNC110 - another process cashes out
                await asyncio.sleep(0.2)
        assert (await http.post(f"/api/v1/tables/{tid}/seats", json=seat, headers=bearer(member))).status_code == 403
        await club_table(http, owner, club, 403)


async def test_a_late_older_event_changes_nothing(clubs: ClubEvents, engine: AsyncEngine) -> None:
    club, player = str(uuid.uuid4()), str(uuid.uuid4())
    await clubs.left(club, player, seq=5)
    await clubs.joined(club, player, seq=3)  # arrives late: older than the leave
    await clubs.left(club, player, seq=5)  # a duplicate
    async with engine.connect() as connection:
        row = (
            await connection.execute(
                text("SELECT role, seq FROM club_memberships WHERE club_id = :c AND player_id = :p"),
                {"c": club, "p": player},
            )
        ).one()
    assert tuple(row) == (None, 5)


async def test_a_member_who_leaves_is_stood_up_after_the_hand_and_hands_carry_the_club(
    lobby: LobbyProcess, ledger: Ledger, clubs: ClubEvents, engine: AsyncEngine
) -> None:
    club, owner, guest = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    for player in (owner, guest):
        await ledger.fund(player, 1_000)
        await clubs.joined(club, player, "owner" if player == owner else "member")
    async with httpx.AsyncClient(base_url=lobby.url, timeout=30) as http:
        tid = (await club_table(http, owner, club))["id"]
        ws = f"{lobby.ws_url}/api/v1/tables/{tid}/ws"
        bots = [Bot(ws, user_token(p), p, POLICIES["random"]) for p in (owner, guest)]
        for seat, bot in enumerate(bots):
            await bot.connect()
            sat = await http.post(
                f"/api/v1/tables/{tid}/seats", json={"seat": seat, "buy_in": "100"}, headers=bearer(bot.player_id)
            )
            assert sat.status_code == 201, sat.text
        async with websockets.connect(ws, additional_headers=bearer(owner)) as watching:
            await messages_until(watching, "snapshot")
            await asyncio.gather(*(bot.play(1, timeout_s=60) for bot in bots))  # hands are being dealt
            await clubs.left(club, guest, "kicked")
            playing = [asyncio.create_task(bot.play(10_000, timeout_s=60)) for bot in bots]
            await messages_until(watching, "player-left", userId=guest, timeout_s=60)
            for task in playing:
                task.cancel()
            await asyncio.gather(*playing, return_exceptions=True)
        for bot in bots:
            await bot.close()
        again = await http.post(f"/api/v1/tables/{tid}/seats", json={"seat": 1, "buy_in": "100"}, headers=bearer(guest))
        assert again.status_code == 403
    async with engine.connect() as connection:
        rows = await connection.execute(
            text("SELECT envelope FROM outbox WHERE type = 'lobby.hand_completed' AND subject = :t"), {"t": tid}
        )
        hands = [envelope["data"] for (envelope,) in rows]
    assert hands
    assert {(h["club_id"], h["union_id"]) for h in hands} == {(club, None)}
