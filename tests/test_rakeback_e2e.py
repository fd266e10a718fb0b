"""Rakeback end to end: bots play at a raked table of a real lobby; the rakeback service (a process, its
payout scheduler on 15-second periods) accrues each player's rake by tier from ``lobby.hand_completed`` and
pays each ended period through a real wallet. The rakeback process is SIGKILLed as soon as it has requested
a period's payouts, and every ``rakeback.payout_requested`` is then delivered again in a new envelope: each
payout is paid once, exactly as the player's statements say, and house rake + rakeback pool + payouts
balance to the rake the lobby took.

This is the public-table path (tiers); a club table under a deal is tests/test_club_rakeback_e2e.py.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import Any

import aio_pika
import httpx
import msgspec
import pytest
from tablium_lobby.bots import POLICIES, Bot

from tablium_kit.messaging import CloudEvent
from tablium_kit.messaging.testing import signed_message
from tablium_kit.service_processes import ADMIN_PASSWORD, Platform, WalletLedger, running_platform
from tablium_kit.testing import RUN_ID
from tablium_kit.waiting import eventually, rows

# Everyone all in: the first hand sees a board and pays rake whatever the cards (random play may fold it).
FUNDS, BUY_IN, HANDS = 1_000_000, 40_000, 2
PASSWORD = ADMIN_PASSWORD
PERIOD_S = 15


@pytest.fixture
async def platform(
    tmp_path_factory: pytest.TempPathFactory, make_database: Callable[[str], Awaitable[str]]
) -> AsyncIterator[Platform]:
    async with running_platform(
        ("player", "wallet", "lobby", "rakeback"),
        vhost=f"tablium-test-{RUN_ID}-rakeback",
        databases=make_database,
        log_dir=tmp_path_factory.mktemp("rakeback-e2e-logs"),
        env={
            "TABLIUM_PLAYER_CONSUME_EVENTS": "false",
            "TABLIUM_RAKEBACK_PAYOUT_PERIOD_S": str(PERIOD_S),
            "TABLIUM_RAKEBACK_PAYOUT_GRACE_S": "1",
            "TABLIUM_RAKEBACK_PAYOUT_CHECK_INTERVAL_S": "0.2",
        },
    ) as running:
        yield running


async def _login(http: httpx.AsyncClient, player: str, username: str) -> dict[str, str]:
    response = await http.post(f"{player}/api/v1/auth/login", json={"login": username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def _republish(amqp_url: str, envelopes: list[dict[str, Any]]) -> None:
    """The same facts again, each in a new envelope (what a republish after a crash would look like)."""
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.declare_exchange("tablium.events", aio_pika.ExchangeType.TOPIC, durable=True)
        for envelope in envelopes:
            fact = msgspec.convert({**envelope, "id": str(uuid.uuid4())}, CloudEvent)
            await exchange.publish(
                signed_message(msgspec.json.encode(fact), message_id=str(fact.id)), routing_key=fact.type
            )


async def test_bots_play_and_the_periods_rakeback_lands_once_as_the_statements_say(platform: Platform) -> None:
    urls, env = platform.urls, platform.env
    rakeback_db, wallet_db, lobby_db = (
        env["TABLIUM_RAKEBACK_DATABASE_URL"],
        env["TABLIUM_WALLET_DATABASE_URL"],
        env["TABLIUM_LOBBY_DATABASE_URL"],
    )
    async with httpx.AsyncClient(timeout=30) as http:
        wallet = WalletLedger(urls["wallet"], "lobby")
        admin = await _login(http, urls["player"], platform.admin)
        table = await http.post(
            f"{urls['lobby']}/api/v1/tables",
            json={"name": "Rakeback", "small_blind": "500", "big_blind": "1000", "seats": 3, "rake_bps": 1000},
            headers=admin,
        )
        assert table.status_code == 201, table.text
        table_id = table.json()["id"]
        bots: list[Bot] = []
        for n in range(3):
            username = f"rb{uuid.uuid4().hex[:10]}"
            registered = await http.post(
                f"{urls['player']}/api/v1/auth/register",
                json={"username": username, "email": f"{username}@example.com", "password": PASSWORD},
            )
            assert registered.status_code == 201, registered.text
            player_id = registered.json()["id"]
            await wallet.fund(player_id, FUNDS)
            token = (await _login(http, urls["player"], username))["Authorization"].removeprefix("Bearer ")
            ws = f"{urls['lobby'].replace('http://', 'ws://')}/api/v1/tables/{table_id}/ws"
            bot = Bot(ws, token, player_id, POLICIES["shove"], rng=random.Random(n))
            await bot.connect()
            bots.append(bot)
        for seat, bot in enumerate(bots):
            sat = await http.post(
                f"{urls['lobby']}/api/v1/tables/{table_id}/seats",
                json={"seat": seat, "buy_in": str(BUY_IN)},
                headers={"Authorization": f"Bearer {bot.token}"},
            )
            assert sat.status_code == 201, sat.text
        await asyncio.gather(*(bot.play(HANDS, timeout_s=60) for bot in bots), return_exceptions=True)
        for bot in bots:
            await http.delete(
                f"{urls['lobby']}/api/v1/tables/{table_id}/seats/me", headers={"Authorization": f"Bearer {bot.token}"}
            )
            await bot.close()

        hands = [
            r[0]
            for r in await rows(
                lobby_db, "SELECT envelope FROM outbox WHERE type = 'lobby.hand_completed' ORDER BY seq"
            )
        ]
        rake = {b.player_id: 0 for b in bots}
        for envelope in hands:
            for seat in envelope["data"]["players"]:
                rake[seat["player_id"]] += int(seat["rake"])
        total_rake = sum(rake.values())
        assert total_rake > 0, "the bots paid some rake"
        last_hand = max(datetime.fromisoformat(e["time"]) for e in hands)

        # As soon as the rakeback service has requested a period's payouts (one transaction), it is killed.
        async def requested() -> bool:
            return bool(await rows(rakeback_db, "SELECT 1 FROM payout_runs WHERE payouts > 0"))

        await eventually(requested, "the scheduler paid a period")
        await asyncio.to_thread(platform.running["rakeback"].kill)
        await asyncio.to_thread(platform.start, "rakeback")

        # Every hand's period ends and is paid (late periods by the restarted scheduler).
        async def all_paid() -> bool:
            runs = await rows(rakeback_db, "SELECT max(period_end) FROM payout_runs")
            unpaid = await rows(
                rakeback_db, "SELECT count(*) FROM rakes WHERE status <> 'accrued' OR hand_time > :t", t=last_hand
            )
            done = await rows(rakeback_db, "SELECT count(*) FROM payouts WHERE status <> 'completed'")
            return bool(runs[0][0] and runs[0][0] > last_hand and unpaid[0][0] == 0 and done[0][0] == 0)

        await eventually(all_paid, "every period paid and completed", within_s=PERIOD_S * 4 + 60)
        requests = [
            r[0]
            for r in await rows(rakeback_db, "SELECT envelope FROM outbox WHERE type = 'rakeback.payout_requested'")
        ]
        await _republish(platform.amqp_url, requests)
        await asyncio.sleep(2)  # what the redeliveries would do, they have done by now (nothing, if all is well)

        payouts = {
            str(pid): (beneficiary, int(amount))
            for pid, beneficiary, amount in await rows(
                rakeback_db, "SELECT payout_id, beneficiary, amount FROM payouts"
            )
        }
        assert len(requests) == len(payouts)
        transfers = await rows(
            wallet_db,
            "SELECT metadata->>'payout_id', code, amount FROM transfers WHERE code LIKE 'rakeback%' ORDER BY code",
        )
        assert sorted((p, c) for p, c, _ in transfers) == sorted(
            [(p, "rakeback_funding") for p in payouts] + [(p, "rakeback_payout") for p in payouts]
        )  # each payout paid once, funded once
        assert all(int(a) == payouts[p][1] for p, _, a in transfers)

        for bot in bots:
            paid = sum(a for b, a in payouts.values() if b == bot.player_id)
            # Bronze: 10% of the player's rake, to the unit per hand (largest remainder).
            assert rake[bot.player_id] // 10 - len(hands) <= paid <= rake[bot.player_id] // 10 + len(hands)
            moments = {e["time"] for e in hands}
            periods = {}
            for moment in moments:
                response = await http.get(
                    f"{urls['rakeback']}/api/v1/rakeback/statements/players/{bot.player_id}",
                    params={"at": moment},
                    headers={"Authorization": f"Bearer {bot.token}"},
                )
                assert response.status_code == 200, response.text
                body = response.json()
                periods[body["period_start"]] = body
            lines = [line for body in periods.values() for line in body["lines"]]
            assert sum(int(line["amount"]) for line in lines) == paid
            assert sum(int(line["paid"]) for line in lines) == paid
            assert sum(int(line["rake"]) for line in lines) == rake[bot.player_id]

        house = await wallet.balance(await wallet.account("house", "house_rake"))
        pool = await wallet.balance(await wallet.account("rakeback", "rakeback_pool"))
        assert pool == 0
        assert house + sum(a for _, a in payouts.values()) == total_rake
    await wallet.aclose()
