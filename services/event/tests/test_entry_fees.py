"""``event.entry_fee_paid`` (issue 14): the fee of every paid entry, re-entry, late entry and rebuy, once per
purchase, through the outbox, with the tournament's club and union; a freeroll states nothing. The real
wallet and Postgres."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import test_service
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from tablium_event.clients.wallet import Wallet
from tablium_event.services.tournaments import Tournaments
from tablium_event.settings import EventSettings
from test_club_tournaments import ClubEvents, create
from test_service import (
    DIRECTOR,
    REBUYS,
    Ledger,
    SessionFactory,
    bearer,
    new_tournament,
    outbox_of,
    register_players,
)

from tablium_kit.auth import ServiceTokens

wallet_url = test_service.wallet_url
settings = test_service.settings
client = test_service.client
sessions = test_service.sessions
ledger = test_service.ledger
pytestmark = test_service.pytestmark


async def fees_of(sessions: SessionFactory) -> list[dict[str, Any]]:
    """Every ``event.entry_fee_paid`` written so far (its subject is the purchase, not the tournament)."""
    async with sessions() as session:
        rows = await session.execute(
            text("SELECT envelope FROM outbox WHERE type = 'event.entry_fee_paid' ORDER BY seq")
        )
        return [row[0]["data"] for row in rows]


async def test_every_paid_entry_and_rebuy_states_its_fee_once(
    client: AsyncTestClient, ledger: Ledger, sessions: SessionFactory, settings: EventSettings
) -> None:
    house = await ledger.account("house", "house_fees")
    house_before = await ledger.available(house)
    tournament_id = await new_tournament(client, **REBUYS, late_reg_until_level=1)
    players = list(await register_players(client, ledger, tournament_id, 3))
    response = await client.post(f"/api/v1/tournaments/{tournament_id}/start", headers=DIRECTOR)
    assert response.status_code == 200, response.text
    # A retry of the start and a reconciler pass state nothing again.
    response = await client.post(f"/api/v1/tournaments/{tournament_id}/start", headers=DIRECTOR)
    assert response.status_code == 409
    reconciler = Tournaments(settings, Wallet(settings.wallet_url, ServiceTokens.from_settings(settings)))
    async with sessions() as session:
        await reconciler.reconcile(session)
        await session.commit()
    late = list(await register_players(client, ledger, tournament_id, 1))  # a late entry
    url = f"/api/v1/tournaments/{tournament_id}"

    async def buy(player: str, request_id: str) -> httpx.Response:
        return await client.post(f"{url}/rebuys", json={"request_id": request_id}, headers=bearer(player, ["player"]))

    request_id = str(uuid.uuid4())
    assert (await buy(players[0], request_id)).status_code == 201
    assert (await buy(players[0], request_id)).status_code == 201  # the same request again: charged once

    mine = [fee for fee in await fees_of(sessions) if fee["tournament_id"] == tournament_id]
    assert sorted((fee["kind"], fee["player_id"]) for fee in mine) == sorted(
        [("entry", p) for p in players] + [("entry", late[0]), ("rebuy", players[0])]
    )
    assert len({fee["purchase_id"] for fee in mine}) == len(mine), "one event per purchase"
    for fee in mine:
        assert fee["fee"] == "100", "a decimal string"
        assert (fee["asset"], fee["club_id"], fee["union_id"]) == ("USDT", None, None)
    late_fee = next(fee for fee in mine if fee["player_id"] == late[0])
    assert isinstance(late_fee["entry_id"], int)
    assert await ledger.available(house) - house_before == 100 * len(mine), "the house got exactly the fees stated"


async def test_a_freeroll_states_no_fee_and_a_club_tournament_its_club(
    client: AsyncTestClient, ledger: Ledger, sessions: SessionFactory
) -> None:
    freeroll = await new_tournament(client, buy_in=0, fee=0)
    await register_players(client, ledger, freeroll, 2)
    assert (await client.post(f"/api/v1/tournaments/{freeroll}/start", headers=DIRECTOR)).status_code == 200
    assert not [f for f in await fees_of(sessions) if f["tournament_id"] == freeroll]
    assert not [t for _, t, _ in await outbox_of(sessions, freeroll) if t == "event.entry_fee_paid"]

    clubs = ClubEvents(sessions)
    club, owner, member = (str(uuid.uuid4()) for _ in range(3))
    await clubs.joined(club, owner, "owner")
    await clubs.joined(club, member)
    for player in (owner, member):
        await ledger.fund(player, 5_000)
    tournament_id = (await create(client, owner, club_id=club))["id"]
    response = await client.post(f"/api/v1/tournaments/{tournament_id}/open", headers=bearer(owner, ["player"]))
    assert response.status_code == 200, response.text
    for player in (owner, member):
        response = await client.post(
            f"/api/v1/tournaments/{tournament_id}/registrations", headers=bearer(player, ["player"])
        )
        assert response.status_code == 201, response.text
    response = await client.post(f"/api/v1/tournaments/{tournament_id}/start", headers=bearer(owner, ["player"]))
    assert response.status_code == 200, response.text
    mine = [fee for fee in await fees_of(sessions) if fee["tournament_id"] == tournament_id]
    assert sorted(fee["player_id"] for fee in mine) == sorted([owner, member])
    assert {(fee["club_id"], fee["union_id"], fee["fee"]) for fee in mine} == {(club, None, "100")}


async def refunds_of(sessions: SessionFactory, tournament_id: str) -> list[dict[str, Any]]:
    async with sessions() as session:
        rows = await session.execute(
            text("SELECT envelope FROM outbox WHERE type = 'event.entry_fee_refunded' ORDER BY seq")
        )
        return [row[0]["data"] for row in rows if row[0]["data"]["tournament_id"] == tournament_id]


async def test_a_cancel_after_the_start_states_each_paid_fee_given_back_once(
    client: AsyncTestClient, ledger: Ledger, sessions: SessionFactory, settings: EventSettings
) -> None:
    house = await ledger.account("house", "house_fees")
    house_before = await ledger.available(house)
    tournament_id = await new_tournament(client, **REBUYS, late_reg_until_level=1)
    players = list(await register_players(client, ledger, tournament_id, 3))
    assert (await client.post(f"/api/v1/tournaments/{tournament_id}/start", headers=DIRECTOR)).status_code == 200
    await register_players(client, ledger, tournament_id, 1)  # a late entry
    url = f"/api/v1/tournaments/{tournament_id}"
    rebuy = {"request_id": str(uuid.uuid4())}
    assert (await client.post(f"{url}/rebuys", json=rebuy, headers=bearer(players[0], ["player"]))).status_code == 201
    assert not await refunds_of(sessions, tournament_id)

    response = await client.post(f"{url}/cancel", headers=DIRECTOR)
    assert response.status_code == 200, response.text
    assert (await client.post(f"{url}/cancel", headers=DIRECTOR)).status_code == 409  # a retry states nothing
    reconciler = Tournaments(settings, Wallet(settings.wallet_url, ServiceTokens.from_settings(settings)))
    async with sessions() as session:
        await reconciler.reconcile(session)  # nor does a reconciler pass
        await session.commit()

    paid = [fee for fee in await fees_of(sessions) if fee["tournament_id"] == tournament_id]
    refunded = await refunds_of(sessions, tournament_id)
    assert len(paid) == 5  # four entries and a rebuy
    key = ("purchase_id", "kind", "player_id", "club_id", "union_id", "asset", "fee")
    assert sorted(tuple(f[k] for k in key) for f in refunded) == sorted(tuple(f[k] for k in key) for f in paid), (
        "each fee stated paid is stated given back, once, with the same fields"
    )
    assert all(isinstance(f["entry_id"], int) for f in refunded), "entries posted at the start are numbered by now"
    assert await ledger.available(house) == house_before, "and the house did give every fee back"
