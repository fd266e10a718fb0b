"""The director's ordering of a tie over REST, against the real wallet: places and prizes replaced, money
moved once, journaled as a fact, refused (problem+json) when it is not a tie or its prizes are paid."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import test_service
from litestar.testing import AsyncTestClient
from sqlalchemy import select, update
from tablium_event.clients.wallet import Wallet
from tablium_event.db.models import Fact, Prize
from tablium_event.services.tournaments import Tournaments
from tablium_event.settings import EventSettings
from test_service import (
    DIRECTOR,
    Ledger,
    SessionFactory,
    bearer,
    ints,
    new_tournament,
    outbox_of,
    register_players,
    report_hand,
    table_stacks,
)

from tablium_kit.auth import ServiceTokens
from tablium_kit.messaging.testing import AmqpNames

wallet_url = test_service.wallet_url
client = test_service.client
sessions = test_service.sessions
ledger = test_service.ledger
pytestmark = test_service.pytestmark


@pytest.fixture(scope="module")
async def settings(
    make_database: Callable[[str], Awaitable[str]], amqp_names: AmqpNames, wallet_url: str
) -> EventSettings:
    """A tie's prizes wait an hour for the director's ruling (``tie_review_s``)."""
    return test_service.event_settings(await make_database("event"), amqp_names, wallet_url, tie_review_s="3600")


THREE_PAID = {"fixed_bp": [5_000, 3_000, 2_000]}  # of 4,000: 2,000 / 1,200 / 800


async def tie_at_third(client: AsyncTestClient, ledger: Ledger) -> tuple[str, dict[str, str], int, int, int, int]:
    """4 entrants at one table, 3 paid; two equal stacks bust in one hand and tie over 3rd-4th (800 shared).
    Returns the tournament, player -> account, the table, the tied entries (lower id first) and the winner."""
    tournament_id = await new_tournament(client, fee=0, seats_per_table=4, payout=THREE_PAID)
    players = await register_players(client, ledger, tournament_id, 4)
    response = await client.post(f"/api/v1/tournaments/{tournament_id}/start", headers=DIRECTOR)
    assert response.status_code == 200, response.text
    [(table, stacks)] = (await table_stacks(client, tournament_id)).items()
    seated = list(stacks)
    low, high = sorted(seated[:2])
    stacks[seated[2]] += stacks[low] + stacks[high]
    stacks[low] = stacks[high] = 0
    out = await report_hand(client, tournament_id, "tie", table, stacks)
    assert {(i["entry"], i["place"], i["place_to"]) for i in out if i["kind"] == "eliminate_player"} == {
        (low, 3, 4),
        (high, 3, 4),
    }
    return tournament_id, players, table, low, high, seated[2]


async def entry_players(client: AsyncTestClient, tournament_id: str) -> dict[int, str]:
    entries = (await client.get(f"/api/v1/tournaments/{tournament_id}/entries")).json()
    return {e["entry_id"]: e["player_id"] for e in entries}


async def test_a_tie_under_review_is_ordered_and_each_place_paid_once(
    client: AsyncTestClient, ledger: Ledger, sessions: SessionFactory, settings: EventSettings
) -> None:
    """The tie's shared prizes (400 each) wait for the ruling; it pays 800 for 3rd and nothing for 4th."""
    tournament_id, players, _, low, high, _ = await tie_at_third(client, ledger)
    accounts = {entry: players[player] for entry, player in (await entry_players(client, tournament_id)).items()}
    before = {entry: await ledger.balance(accounts[entry]) for entry in (low, high)}
    async with sessions() as session:
        query = select(Prize.status).where(Prize.tournament_id == uuid.UUID(tournament_id))
        held = (await session.scalars(query)).all()
    assert held == ["held", "held"], "nothing paid while the director may still order the tie"

    url = f"/api/v1/tournaments/{tournament_id}/ties"
    response = await client.post(url, json={"entries": [high, low]}, headers=DIRECTOR)
    assert response.status_code == 200, response.text
    after = {entry: await ledger.balance(accounts[entry]) for entry in (low, high)}
    assert {entry: after[entry] - before[entry] for entry in (low, high)} == {high: 800, low: 0}

    standings = {
        s["entry"]: (s["place"], s.get("prize")) for s in ints((await client.get(f"{url[:-5]}/standings")).json())
    }
    assert standings[high] == (3, 800)
    assert standings[low] == (4, 0)
    async with sessions() as session:
        prizes = (await session.scalars(select(Prize).where(Prize.tournament_id == uuid.UUID(tournament_id)))).all()
        facts = (await session.scalars(select(Fact.kind).where(Fact.tournament_id == uuid.UUID(tournament_id)))).all()
    assert sorted((p.entry_id, p.amount, p.status) for p in prizes) == sorted(
        [(low, 400, "voided"), (high, 400, "voided"), (high, 800, "paid")]
    )
    assert facts[-1] == "order_tie", "journaled as a fact"
    events = [(t, d) for _, t, d in await outbox_of(sessions, tournament_id)]
    ordered = [d for t, d in events if t == "event.tie_ordered"]
    assert [(o["entries"], o["place"], o["place_to"]) for o in ordered] == [([high, low], 3, 4)]
    assert [(d["entry"], d["amount"]) for t, d in events if t == "event.prize_awarded"][-1:] == [(high, "800")]

    # The reconciler (another instance) has nothing left to pay: money moved once.
    reconciler = Tournaments(settings, Wallet(settings.wallet_url, ServiceTokens.from_settings(settings)))
    async with sessions() as session:
        await reconciler.reconcile(session)
        await session.commit()
        assert await reconciler.check_pool(session, uuid.UUID(tournament_id)), "the pool holds what the facts say"
    assert {entry: await ledger.balance(accounts[entry]) for entry in (low, high)} == after
    response = await client.get(f"/api/v1/tournaments/{tournament_id}")
    assert response.status_code == 200


async def test_a_paid_tie_is_final_and_bad_rulings_are_problems(
    client: AsyncTestClient, ledger: Ledger, sessions: SessionFactory, settings: EventSettings
) -> None:
    tournament_id, players, _, low, high, winner = await tie_at_third(client, ledger)
    accounts = {entry: players[player] for entry, player in (await entry_players(client, tournament_id)).items()}
    before = {entry: await ledger.balance(accounts[entry]) for entry in (low, high)}
    async with sessions() as session:  # the review's hour has passed with no ruling
        await session.execute(
            update(Prize)
            .where(Prize.tournament_id == uuid.UUID(tournament_id))
            .values(created_at=datetime.now(UTC) - timedelta(hours=2))
        )
        await session.commit()
    reconciler = Tournaments(settings, Wallet(settings.wallet_url, ServiceTokens.from_settings(settings)))
    async with sessions() as session:
        await reconciler.reconcile(session)
        await session.commit()
    assert {e: await ledger.balance(accounts[e]) - before[e] for e in (low, high)} == {low: 400, high: 400}
    url = f"/api/v1/tournaments/{tournament_id}/ties"
    cases: list[tuple[Any, dict[str, str], int]] = [
        ({"entries": [high, low]}, DIRECTOR, 409),  # paid after the review: final
        ({"entries": [low, winner]}, DIRECTOR, 409),  # not a tie
        ({"entries": [low, 99]}, DIRECTOR, 409),  # no such entry
        ({"entries": [low]}, DIRECTOR, 400),  # one entry is no tie
        ({"entries": []}, DIRECTOR, 400),
        ({"entries": ["x", "y"]}, DIRECTOR, 400),
        ({"order": [low, high]}, DIRECTOR, 400),
        ({"entries": [high, low]}, bearer(str(uuid.uuid4()), ["player"]), 403),
    ]
    for body, headers, status in cases:
        response = await client.post(url, json=body, headers=headers)
        assert response.status_code == status, (body, response.text)
        assert response.headers["content-type"].startswith("application/problem+json"), body
    response = await client.post(f"/api/v1/tournaments/{uuid.uuid4()}/ties", json={"entries": [1, 2]}, headers=DIRECTOR)
    assert response.status_code == 404
    response = await client.post(
        f"/api/v1/tournaments/{await new_tournament(client)}/ties", json={"entries": [1, 2]}, headers=DIRECTOR
    )
    assert response.status_code == 409, "not started"


async def test_a_tie_out_of_the_money_is_ordered(
    client: AsyncTestClient, ledger: Ledger, sessions: SessionFactory
) -> None:
    tournament_id = await new_tournament(client, fee=0, seats_per_table=6, payout={"fixed_bp": [10_000]})
    await register_players(client, ledger, tournament_id, 5)
    response = await client.post(f"/api/v1/tournaments/{tournament_id}/start", headers=DIRECTOR)
    assert response.status_code == 200, response.text
    [(table, stacks)] = (await table_stacks(client, tournament_id)).items()
    seated = list(stacks)
    low, high = sorted(seated[:2])
    stacks[seated[2]] += stacks[low] + stacks[high]
    stacks[low] = stacks[high] = 0
    await report_hand(client, tournament_id, "tie", table, stacks)
    response = await client.post(
        f"/api/v1/tournaments/{tournament_id}/ties", json={"entries": [low, high]}, headers=DIRECTOR
    )
    assert response.status_code == 200, response.text
    eliminated = [d for _, t, d in await outbox_of(sessions, tournament_id) if t == "event.player_eliminated"]
    assert [(d["entry"], d["place"], d["place_to"]) for d in eliminated[-2:]] == [(low, 4, 4), (high, 5, 5)]
