"""Club rakeback end to end (issue 14): a club made over the club service's REST, with an agent and three
players (two recruited by the agent, one by the club), plays hands at a club table of a real lobby (bots
over the WebSocket); the rakeback service accrues each player's rake under the club's deal from the
lobby's ``lobby.hand_completed`` and the club's facts; the period's payout, run by the CLI, lands in each
receiver's wallet account exactly as its statement says, and house rake + rakeback pool + payouts balance
to the rake the lobby took. Player, wallet, club, lobby and rakeback run as processes.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import Any

import httpx
import pytest
from tablium_lobby.bots import POLICIES, Bot

from tablium_kit.service_processes import ADMIN_PASSWORD, Platform, WalletLedger, running_platform
from tablium_kit.testing import RUN_ID
from tablium_kit.waiting import eventually, rows

# Everyone all in: each hand sees a board and pays rake whatever the cards.
FUNDS, BUY_IN, HANDS = 1_000_000, 40_000, 2
PERIOD_S = 20
DEAL = {"club_bps": 5000, "player_bps": 1000}
AGENT_TERMS = {"bps": 3000, "player_bps": 2000}


@pytest.fixture
async def platform(
    tmp_path_factory: pytest.TempPathFactory, make_database: Callable[[str], Awaitable[str]]
) -> AsyncIterator[Platform]:
    async with running_platform(
        ("player", "wallet", "club", "lobby", "rakeback"),
        vhost=f"tablium-test-{RUN_ID}-club-rakeback",
        databases=make_database,
        log_dir=tmp_path_factory.mktemp("club-rakeback-e2e-logs"),
        env={
            "TABLIUM_RAKEBACK_PAYOUT_SCHEDULER": "false",  # the CLI pays
            "TABLIUM_RAKEBACK_PAYOUT_PERIOD_S": str(PERIOD_S),
        },
    ) as running:
        yield running


class Person:
    def __init__(self, player_id: str, token: str) -> None:
        self.id, self.token = player_id, token
        self.auth = {"Authorization": f"Bearer {token}"}


async def _register(http: httpx.AsyncClient, player_url: str, prefix: str) -> Person:
    username = f"{prefix}{uuid.uuid4().hex[:10]}"
    registered = await http.post(
        f"{player_url}/api/v1/auth/register",
        json={"username": username, "email": f"{username}@example.com", "password": ADMIN_PASSWORD},
    )
    assert registered.status_code == 201, registered.text
    login = await http.post(f"{player_url}/api/v1/auth/login", json={"login": username, "password": ADMIN_PASSWORD})
    assert login.status_code == 200, login.text
    return Person(registered.json()["id"], login.json()["access_token"])


async def _until_created(call: Callable[[], Awaitable[httpx.Response]], what: str) -> httpx.Response:
    """A call the lobby refuses until its projection of the club's facts has caught up."""
    answer: list[httpx.Response] = []

    async def accepted() -> bool:
        answer[:] = [await call()]
        assert answer[0].status_code < 500, answer[0].text
        return answer[0].status_code == 201

    await eventually(accepted, what, within_s=60)
    return answer[0]


async def test_a_club_plays_and_its_periods_rakeback_lands_in_each_wallet_as_the_statements_say(
    platform: Platform,
) -> None:
    urls, env = platform.urls, platform.env
    rakeback_db, lobby_db = env["TABLIUM_RAKEBACK_DATABASE_URL"], env["TABLIUM_LOBBY_DATABASE_URL"]
    wallet = WalletLedger(urls["wallet"], "lobby")
    async with httpx.AsyncClient(timeout=30) as http:
        owner, agent = await _register(http, urls["player"], "owner"), await _register(http, urls["player"], "agent")
        players = [await _register(http, urls["player"], f"p{n}") for n in range(3)]
        clubs = f"{urls['club']}/api/v1/clubs"

        created = await http.post(clubs, json={"name": "Thursday game", "privacy": "private"}, headers=owner.auth)
        assert created.status_code == 201, created.text
        club_id = created.json()["id"]
        invite = await http.post(f"{clubs}/{club_id}/invites", json={"max_uses": 10}, headers=owner.auth)
        assert invite.status_code == 201, invite.text
        joined = await http.post(f"{clubs}/join", json={"code": invite.json()["code"]}, headers=agent.auth)
        assert joined.status_code == 200, joined.text
        role = await http.put(f"{clubs}/{club_id}/members/{agent.id}/role", json={"role": "agent"}, headers=owner.auth)
        assert role.status_code == 200, role.text
        recruiting = await http.post(
            f"{clubs}/{club_id}/invites", json={"max_uses": 10, "agent_id": agent.id}, headers=owner.auth
        )
        assert recruiting.status_code == 201, recruiting.text
        for person, code in zip(players, [recruiting, recruiting, invite], strict=True):
            joined = await http.post(f"{clubs}/join", json={"code": code.json()["code"]}, headers=person.auth)
            assert joined.status_code == 200, joined.text
        deal = await http.put(
            f"{clubs}/{club_id}/deal",
            json={**DEAL, "agents": [{"agent_id": agent.id, **AGENT_TERMS}]},
            headers=owner.auth,
        )
        assert deal.status_code == 200, deal.text
        members = (await http.get(f"{clubs}/{club_id}/members", headers=owner.auth)).json()
        assert {m["player_id"]: m["agent_id"] for m in members if m["player_id"] in {p.id for p in players}} == {
            players[0].id: agent.id,
            players[1].id: agent.id,
            players[2].id: None,
        }

        table_settings = {"name": "Club table", "small_blind": "500", "big_blind": "1000", "seats": 3}
        table = await _until_created(
            lambda: http.post(
                f"{urls['lobby']}/api/v1/tables/club",
                json={**table_settings, "rake_bps": 1000, "club_id": club_id},
                headers=owner.auth,
            ),
            "the lobby knows the club's owner",
        )
        table_id = table.json()["id"]
        bots = []
        for n, person in enumerate(players):
            await wallet.fund(person.id, FUNDS)
            bot = Bot(
                f"{platform.ws_url('lobby')}/api/v1/tables/{table_id}/ws",
                person.token,
                person.id,
                POLICIES["shove"],
                rng=random.Random(n),
            )
            await bot.connect()
            bots.append(bot)
        for seat, (person, _) in enumerate(zip(players, bots, strict=True)):
            await _until_created(
                lambda seat=seat, person=person: http.post(  # type: ignore[misc]
                    f"{urls['lobby']}/api/v1/tables/{table_id}/seats",
                    json={"seat": seat, "buy_in": str(BUY_IN)},
                    headers=person.auth,
                ),
                "the lobby knows the member",
            )
        await asyncio.gather(*(bot.play(HANDS, timeout_s=90) for bot in bots), return_exceptions=True)
        for person, bot in zip(players, bots, strict=True):
            await http.delete(f"{urls['lobby']}/api/v1/tables/{table_id}/seats/me", headers=person.auth)
            await bot.close()

        hands = [
            r[0]
            for r in await rows(
                lobby_db, "SELECT envelope FROM outbox WHERE type = 'lobby.hand_completed' ORDER BY seq"
            )
        ]
        assert all(h["data"]["club_id"] == club_id for h in hands)
        rake = {p.id: 0 for p in players}
        for envelope in hands:
            for seat in envelope["data"]["players"]:
                rake[seat["player_id"]] += int(seat["rake"])
        total_rake = sum(rake.values())
        assert total_rake > 0, "the bots paid some rake"
        raked = sum(1 for h in hands for s in h["data"]["players"] if int(s["rake"]) > 0)

        async def accrued() -> bool:
            ((accrued_count,),) = await rows(rakeback_db, "SELECT count(*) FROM rakes WHERE status = 'accrued'")
            return bool(accrued_count == raked)

        await eventually(accrued, "every raked hand accrued under the club's deal")

        # The CLI pays the last ended period, and with it every unpaid accrual of hands before its end.
        async def paid() -> bool:
            await asyncio.to_thread(platform.run, "rakeback", "pay-period")
            unpaid = await rows(
                rakeback_db, "SELECT count(*) FROM accrual_totals WHERE payout_id IS NULL AND kind <> 'platform'"
            )
            return bool(unpaid[0][0] == 0)

        await eventually(paid, "the period of the hands ended and was paid", within_s=PERIOD_S * 3 + 60)

        async def completed() -> bool:
            ((unfinished,),) = await rows(rakeback_db, "SELECT count(*) FROM payouts WHERE status <> 'completed'")
            return bool(unfinished == 0)

        await eventually(completed, "the wallet paid every payout")
        payouts = {
            (kind, beneficiary): int(amount)
            for kind, beneficiary, amount in await rows(
                rakeback_db, "SELECT kind, beneficiary, sum(amount) FROM payouts GROUP BY kind, beneficiary"
            )
        }
        assert {kind for kind, _ in payouts} == {"club", "agent", "player"}

        landed = {
            account: int(amount)
            for account, amount in await rows(
                env["TABLIUM_WALLET_DATABASE_URL"],
                "SELECT credit_account_id::text, sum(amount) FROM transfers WHERE code = 'rakeback_payout' GROUP BY 1",
            )
        }
        # Each receiver's statements (read by the receiver) say what landed in its wallet account.
        moments = sorted({e["time"] for e in hands})
        receivers = [
            ("players", person.id, person, "player", f"player:{person.id}", "player") for person in players
        ] + [
            ("agents", agent.id, agent, "agent", f"player:{agent.id}", "player"),
            ("clubs", club_id, owner, "club", f"club:{club_id}", "club"),
        ]
        for level, subject, reader, kind, owner_name, account_kind in receivers:
            periods: dict[str, Any] = {}
            for moment in moments:
                response = await http.get(
                    f"{urls['rakeback']}/api/v1/rakeback/statements/{level}/{subject}",
                    params={"at": moment},
                    headers=reader.auth,
                )
                assert response.status_code == 200, response.text
                periods[response.json()["period_start"]] = response.json()
            lines = [line for body in periods.values() for line in body["lines"]]
            stated = sum(int(line["paid"]) for line in lines)
            assert stated == sum(int(line["amount"]) for line in lines) == payouts.get((kind, subject), 0), level
            account = await wallet.account(owner_name, account_kind)
            assert landed.get(account, 0) == stated, level
        # The agent did not play and the club holds nothing else: their balances are their payouts.
        assert await wallet.player_balance(agent.id) == payouts[("agent", agent.id)]
        assert await wallet.balance(await wallet.account(f"club:{club_id}", "club")) == payouts[("club", club_id)]
        for person in players:
            if rake[person.id]:
                assert payouts[("player", person.id)] > 0

        house = await wallet.balance(await wallet.account("house", "house_rake"))
        pool = await wallet.balance(await wallet.account("rakeback", "rakeback_pool"))
        assert pool == 0
        assert house + sum(payouts.values()) == total_rake
        last_hand = max(datetime.fromisoformat(e["time"]) for e in hands)
        runs = await rows(rakeback_db, "SELECT max(period_end) FROM payout_runs")
        assert runs[0][0] > last_hand
    await wallet.aclose()
