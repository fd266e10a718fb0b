"""Statements over HTTP: who may read which (roles from the service's own membership projection), JSON and CSV."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from .conftest import bearer, deal, deliver, event, hand, member

DAY = datetime(2026, 9, 9, 12, tzinfo=UTC)


@pytest.fixture(scope="module")
async def club(sessions: async_sessionmaker[AsyncSession]) -> dict[str, uuid.UUID]:
    ids = {name: uuid.uuid4() for name in ("club", "union", "owner", "manager", "agent", "sub", "player", "outsider")}
    agents = [
        {"agent_id": str(ids["agent"]), "parent_agent_id": None, "bps": 2500, "player_bps": 1000},
        {"agent_id": str(ids["sub"]), "parent_agent_id": str(ids["agent"]), "bps": 2000, "player_bps": 1000},
    ]
    facts = [
        member(ids["club"], ids["owner"], 1, role="owner"),
        member(ids["club"], ids["manager"], 2, role="manager"),
        member(ids["club"], ids["agent"], 3, role="agent"),
        member(ids["club"], ids["sub"], 4, role="agent", agent=ids["agent"]),
        member(ids["club"], ids["player"], 5, agent=ids["sub"]),
        event("club.union_joined", {"union_id": str(ids["union"]), "club_id": str(ids["club"]), "seq": 1}),
        deal(
            ids["club"],
            1,
            DAY - timedelta(days=1),
            6,
            club_bps=3000,
            player_bps=500,
            union=(ids["union"], 4000),
            agents=agents,
        ),
        hand({ids["player"]: 10_000}, at=DAY, club_id=ids["club"], union_id=ids["union"]),
        hand({ids["player"]: 2_000}, at=DAY + timedelta(hours=1), club_id=ids["club"]),
    ]
    for fact in facts:
        await deliver(sessions, fact)
    return ids


def _url(level: str, subject: uuid.UUID, suffix: str = "") -> str:
    return f"/api/v1/rakeback/statements/{level}/{subject}{suffix}?at=2026-09-09T10:00:00Z"


@pytest.mark.parametrize(
    ("reader", "level", "subject", "allowed"),
    [
        ("player", "players", "player", True),
        ("sub", "players", "player", True),  # its recruit
        ("agent", "players", "player", True),  # its subtree
        ("manager", "players", "player", True),
        ("owner", "agents", "sub", True),
        ("agent", "agents", "sub", True),
        ("outsider", "players", "player", False),
        ("player", "agents", "sub", False),
        ("sub", "agents", "agent", False),  # not its subtree: its upline
        ("owner", "clubs", "club", True),
        ("manager", "clubs", "club", True),
        ("agent", "clubs", "club", False),
        ("player", "clubs", "club", False),
        ("owner", "unions", "union", True),
        ("agent", "unions", "union", False),
        ("outsider", "unions", "union", False),
    ],
)
async def test_who_may_read_which_statement(
    client: AsyncTestClient, club: dict[str, uuid.UUID], reader: str, level: str, subject: str, allowed: bool
) -> None:
    for suffix in ("", "/csv"):
        response = await client.get(_url(level, club[subject], suffix), headers=bearer(club[reader]))
        assert response.status_code == (200 if allowed else 403), response.text
        if not allowed:
            assert response.headers["content-type"].startswith("application/problem+json")


async def test_who_left_is_no_longer_anyones_to_read(
    client: AsyncTestClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """A player's statement holds all their rakeback (every club, every public table): once they left a club,
    its staff and its agents no longer read it; once a club left a union, its staff no longer read the union's."""
    ids = {name: uuid.uuid4() for name in ("club", "union", "owner", "agent", "player", "stayer")}
    club = ids["club"]
    facts = [
        member(club, ids["owner"], 1, role="owner"),
        member(club, ids["agent"], 2, role="agent"),
        member(club, ids["player"], 3, agent=ids["agent"]),
        member(club, ids["stayer"], 4, agent=ids["agent"]),
        event("club.union_joined", {"union_id": str(ids["union"]), "club_id": str(club), "seq": 5}),
        hand({ids["player"]: 5_000}, at=DAY),  # a public table's hand: the club's staff never had a part in it
    ]
    for fact in facts:
        await deliver(sessions, fact)
    allowed = [("owner", "players", "player"), ("agent", "players", "player"), ("owner", "unions", "union")]
    for reader, level, subject in allowed:
        response = await client.get(_url(level, ids[subject]), headers=bearer(ids[reader]))
        assert response.status_code == 200, (reader, level, response.text)
    left = {"club_id": str(club), "player_id": str(ids["player"]), "reason": "left", "seq": 6}
    await deliver(sessions, event("club.member_left", left, subject=str(club)))
    await deliver(sessions, event("club.union_left", {"union_id": str(ids["union"]), "club_id": str(club), "seq": 7}))
    for reader, level, subject in allowed:
        for suffix in ("", "/csv"):
            response = await client.get(_url(level, ids[subject], suffix), headers=bearer(ids[reader]))
            assert response.status_code == 403, (reader, level, suffix, response.text)
    # Those still there are read as before; the player reads their own.
    for reader, subject in (("owner", "stayer"), ("agent", "stayer"), ("player", "player")):
        response = await client.get(_url("players", ids[subject]), headers=bearer(ids[reader]))
        assert response.status_code == 200, (reader, subject, response.text)


async def test_an_admin_reads_any_statement(client: AsyncTestClient, club: dict[str, uuid.UUID]) -> None:
    response = await client.get(_url("unions", club["union"]), headers=bearer(uuid.uuid4(), ["player", "admin"]))
    assert response.status_code == 200
    assert response.json()["totals"] == [{"asset": "USDT", "rake": "10000", "amount": "1000", "paid": "0"}]


async def test_statements_say_what_each_layer_accrued(client: AsyncTestClient, club: dict[str, uuid.UUID]) -> None:
    owner = bearer(club["owner"])
    amounts = {}
    for level, subject in (("players", "player"), ("agents", "agent"), ("agents", "sub"), ("clubs", "club")):
        body = (await client.get(_url(level, club[subject]), headers=owner)).json()
        assert body["period_start"].startswith("2026-09-07")  # the Monday
        (line,) = body["lines"]
        assert (line["player_id"], line["hands"], line["rake"]) == (str(club["player"]), 2, "12000")
        amounts[subject] = int(line["amount"])
    # Union table (10,000): union 10%, club 5%, agent 5%, sub 10%, player 10%; club table (2,000): no union.
    assert amounts == {"player": 1200, "agent": 600, "sub": 1200, "club": 600}
    response = await client.get(_url("agents", club["sub"], "/csv"), headers=owner)
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [(r["player_id"], r["rake"], r["amount"], r["paid"]) for r in rows] == [
        (str(club["player"]), "12000", "1200", "0")
    ]


async def test_bad_input_is_a_problem_not_a_500(client: AsyncTestClient, club: dict[str, uuid.UUID]) -> None:
    me = bearer(club["player"])
    for url, status in (
        (f"/api/v1/rakeback/statements/tables/{club['player']}", 422),
        (f"/api/v1/rakeback/statements/players/{club['player']}?at=yesterday", 400),
        (f"/api/v1/rakeback/statements/players/{club['player']}?at=0001-01-01T00:00:00Z", 422),
        ("/api/v1/rakeback/statements/players/not-a-uuid", 404),
    ):
        response = await client.get(url, headers=me)
        assert response.status_code == status, (url, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
    assert (await client.get(_url("players", club["player"]))).status_code == 401


async def test_my_tiers(client: AsyncTestClient, sessions: async_sessionmaker[AsyncSession]) -> None:
    player = uuid.uuid4()
    await deliver(sessions, hand({player: 150_000_000}, at=datetime.now(UTC) - timedelta(days=1)))
    tiers = (await client.get("/api/v1/rakeback/tiers/me", headers=bearer(player))).json()
    assert {t["asset"]: t["tier"] for t in tiers} == {"ETH": "bronze", "USDT": "silver"}
