"""Rakeback end to end: bots play at a raked table of a real lobby; the rakeback service (a process, its
payout scheduler on 15-second periods) accrues each player's rake by tier from ``lobby.hand_completed`` and
pays each ended period through a real wallet. The rakeback process is SIGKILLed as soon as it has requested
a period's payouts, and every ``rakeback.payout_requested`` is then delivered again in a new envelope: each
payout is paid once, exactly as the player's statements say, and house rake + rakeback pool + payouts
balance to the rake the lobby took.

The lobby does not put clubs on its tables yet (its ``lobby.hand_completed`` has no ``club_id``), so this
is the public-table path; club deals are covered against the service's handlers in services/rakeback/tests.
"""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import Any

import aio_pika
import httpx
import msgspec
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from tablium_lobby.bots import POLICIES, Bot

from tablium_kit.auth import ServiceTokens
from tablium_kit.messaging import CloudEvent, declare_topology
from tablium_kit.service_processes import ServiceProcess, start_service
from tablium_kit.testing import RUN_ID

from .conftest import BIN, free_port

# Everyone all in: the first hand sees a board and pays rake whatever the cards (random play may fold it).
FUNDS, BUY_IN, HANDS = 1_000_000, 40_000, 2
PASSWORD = "correct horse battery"
PERIOD_S = 15


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True)


async def _rows(url: str, sql: str, **params: Any) -> list[Any]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            return list(await connection.execute(text(sql), params))
    finally:
        await engine.dispose()


async def _wait_for(check: Callable[[], Awaitable[bool]], what: str, timeout_s: float = 120) -> None:
    try:
        async with asyncio.timeout(timeout_s):
            while not await check():  # noqa: ASYNC110 - polling other processes' state
                await asyncio.sleep(0.1)
    except TimeoutError:
        raise AssertionError(f"timed out waiting: {what}") from None


@pytest.fixture
async def platform(
    tmp_path_factory: pytest.TempPathFactory, make_database: Callable[[str], Awaitable[str]]
) -> AsyncIterator[dict[str, Any]]:
    # A vhost of its own: the services consume their usual queues, which on the shared vhost are the platform's.
    vhost = f"tablium-test-{RUN_ID}-rakeback"
    await asyncio.to_thread(_rabbitmqctl, "add_vhost", vhost)
    await asyncio.to_thread(_rabbitmqctl, "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    amqp_url = f"amqp://guest:guest@127.0.0.1:5672/{vhost}"
    await declare_topology(amqp_url, "tablium.events")
    ports = {name: free_port() for name in ("player", "wallet", "lobby", "rakeback")}
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    env = {
        "TABLIUM_ENVIRONMENT": "test",
        "TABLIUM_LOG_JSON": "true",
        "TABLIUM_AMQP_URL": amqp_url,
        "TABLIUM_REDIS_NAMESPACE": f"test-{RUN_ID}-rakeback",
        "TABLIUM_PLAYER_ARGON2_MEMORY_KIB": "1024",
        "TABLIUM_PLAYER_ARGON2_TIME_COST": "1",
        "TABLIUM_PLAYER_CONSUME_EVENTS": "false",
        "TABLIUM_JWKS_URL": f"{urls['player']}/api/v1/auth/jwks",
        "TABLIUM_LOBBY_WALLET_URL": urls["wallet"],
        "TABLIUM_LOBBY_BETWEEN_HANDS_S": "0.05",
        "TABLIUM_LOBBY_RECONCILE_GRACE_S": "0.5",
        "TABLIUM_LOBBY_RECONCILE_INTERVAL_S": "0.5",
        "TABLIUM_RAKEBACK_PAYOUT_PERIOD_S": str(PERIOD_S),
        "TABLIUM_RAKEBACK_PAYOUT_GRACE_S": "1",
        "TABLIUM_RAKEBACK_PAYOUT_CHECK_INTERVAL_S": "0.2",
    }
    for name in ports:
        env[f"TABLIUM_{name.upper()}_DATABASE_URL"] = await make_database(f"rb_e2e_{name}")
    logs = tmp_path_factory.mktemp("rakeback-e2e-logs")
    running: dict[str, ServiceProcess] = {}

    def start(name: str) -> ServiceProcess:
        running[name] = start_service(name, env, port=ports[name], log_dir=logs, ready_path="/ready", timeout_s=240)
        return running[name]

    try:
        for name in ("player", "wallet", "lobby", "rakeback"):
            await asyncio.to_thread(start, name)
        admin = f"admin{uuid.uuid4().hex[:8]}"
        account = ["--username", admin, "--email", f"{admin}@example.com", "--password", PASSWORD, "--role", "admin"]
        await asyncio.to_thread(
            subprocess.run,
            [str(BIN / "tablium-player"), "create-account", *account],
            env={**os.environ, **env},
            check=True,
            capture_output=True,
        )
        yield {"urls": urls, "env": env, "admin": admin, "running": running, "start": start, "amqp": amqp_url}
    finally:
        for service in running.values():
            service.stop()
        await asyncio.to_thread(_rabbitmqctl, "delete_vhost", vhost)


class Wallet:
    """The wallet's internal API, as the lobby calls it (development service keys in the test environment)."""

    def __init__(self, http: httpx.AsyncClient, url: str) -> None:
        self.http, self.url, self.tokens = http, url, ServiceTokens.development("lobby")

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens.token('wallet')}", "Idempotency-Key": uuid.uuid4().hex}

    async def account(self, owner: str, kind: str) -> str:
        body = {"owner": owner, "kind": kind, "asset": "USDT"}
        response = await self.http.put(f"{self.url}/internal/v1/accounts", json=body, headers=self._headers())
        assert response.status_code == 200, response.text
        return str(response.json()["id"])

    async def balance(self, account_id: str) -> int:
        response = await self.http.get(f"{self.url}/internal/v1/accounts/{account_id}", headers=self._headers())
        return int(response.json()["balance"]["balance"])

    async def fund(self, player_id: str, amount: int) -> str:
        house, account = (
            await self.account("house", "house_adjustments"),
            await self.account(f"player:{player_id}", "player"),
        )
        body = {
            "id": str(uuid.uuid4()),
            "debit_account_id": house,
            "credit_account_id": account,
            "amount": str(amount),
            "asset": "USDT",
            "code": "test_funding",
        }
        response = await self.http.post(f"{self.url}/internal/v1/transfers", json=body, headers=self._headers())
        assert response.status_code in (200, 201), response.text
        return account


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
                aio_pika.Message(body=msgspec.json.encode(fact), message_id=str(fact.id)), routing_key=fact.type
            )


async def test_bots_play_and_the_periods_rakeback_lands_once_as_the_statements_say(platform: dict[str, Any]) -> None:
    urls, env = platform["urls"], platform["env"]
    rakeback_db, wallet_db, lobby_db = (
        env["TABLIUM_RAKEBACK_DATABASE_URL"],
        env["TABLIUM_WALLET_DATABASE_URL"],
        env["TABLIUM_LOBBY_DATABASE_URL"],
    )
    async with httpx.AsyncClient(timeout=30) as http:
        wallet = Wallet(http, urls["wallet"])
        admin = await _login(http, urls["player"], platform["admin"])
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
            for r in await _rows(
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
            return bool(await _rows(rakeback_db, "SELECT 1 FROM payout_runs WHERE payouts > 0"))

        await _wait_for(requested, "the scheduler paid a period")
        await asyncio.to_thread(platform["running"]["rakeback"].kill)
        await asyncio.to_thread(platform["start"], "rakeback")

        # Every hand's period ends and is paid (late periods by the restarted scheduler).
        async def all_paid() -> bool:
            runs = await _rows(rakeback_db, "SELECT max(period_end) FROM payout_runs")
            unpaid = await _rows(
                rakeback_db, "SELECT count(*) FROM rakes WHERE status <> 'accrued' OR hand_time > :t", t=last_hand
            )
            done = await _rows(rakeback_db, "SELECT count(*) FROM payouts WHERE status <> 'completed'")
            return bool(runs[0][0] and runs[0][0] > last_hand and unpaid[0][0] == 0 and done[0][0] == 0)

        await _wait_for(all_paid, "every period paid and completed", timeout_s=PERIOD_S * 4 + 60)
        requests = [
            r[0]
            for r in await _rows(rakeback_db, "SELECT envelope FROM outbox WHERE type = 'rakeback.payout_requested'")
        ]
        await _republish(platform["amqp"], requests)
        await asyncio.sleep(2)  # what the redeliveries would do, they have done by now (nothing, if all is well)

        payouts = {
            str(pid): (beneficiary, int(amount))
            for pid, beneficiary, amount in await _rows(
                rakeback_db, "SELECT payout_id, beneficiary, amount FROM payouts"
            )
        }
        assert len(requests) == len(payouts)
        transfers = await _rows(
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
