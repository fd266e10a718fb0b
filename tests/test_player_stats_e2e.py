"""Stats from real play: the wallet, the lobby and the player service as processes on one private
RabbitMQ vhost; bots registered with the player service play hands at a raked table over the
WebSocket; the player's profile shows those hands, and its net winnings equal what the wallet moved."""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from tablium_lobby.bots import POLICIES, Bot

from tablium_kit.auth import ServiceTokens
from tablium_kit.messaging import declare_topology
from tablium_kit.testing import RUN_ID

from .conftest import BIN, Processes, free_port

FUNDS, BUY_IN, HANDS = 10_000, 200, 4
PASSWORD = "correct horse battery"


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True)


@pytest.fixture
async def services(
    tmp_path_factory: pytest.TempPathFactory, make_database: Callable[[str], Awaitable[str]]
) -> AsyncIterator[dict[str, Any]]:
    # A vhost of its own: the player consumes its usual queue, which on the shared vhost is the platform's.
    vhost = f"tablium-test-{RUN_ID}-stats"
    await asyncio.to_thread(_rabbitmqctl, "add_vhost", vhost)
    await asyncio.to_thread(_rabbitmqctl, "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    amqp_url = f"amqp://guest:guest@127.0.0.1:5672/{vhost}"
    # Every consumer's queue, as the deploy step declares them: without a route, the relay parks an event
    # (lobby.table_opened: the club and event services aren't running here) and holds back its subject's
    # later ones (the table's lobby.hand_completed) behind it.
    await declare_topology(amqp_url, "tablium.events")
    ports = {name: free_port() for name in ("player", "wallet", "lobby")}
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    env = {
        **os.environ,
        "TABLIUM_ENVIRONMENT": "test",
        "TABLIUM_LOG_JSON": "true",
        "TABLIUM_AMQP_URL": amqp_url,
        "TABLIUM_REDIS_NAMESPACE": f"test-{RUN_ID}-stats",
        "TABLIUM_PLAYER_ARGON2_MEMORY_KIB": "1024",
        "TABLIUM_PLAYER_ARGON2_TIME_COST": "1",
        "TABLIUM_WALLET_CONSUME_EVENTS": "false",
        "TABLIUM_LOBBY_WALLET_URL": urls["wallet"],
        "TABLIUM_LOBBY_JWKS_URL": f"{urls['player']}/api/v1/auth/jwks",
        "TABLIUM_LOBBY_BETWEEN_HANDS_S": "0.05",
        "TABLIUM_LOBBY_RECONCILE_GRACE_S": "0.5",
        "TABLIUM_LOBBY_RECONCILE_INTERVAL_S": "0.5",
        **{f"TABLIUM_{name.upper()}_PORT": str(port) for name, port in ports.items()},
    }
    for name in ports:
        env[f"TABLIUM_{name.upper()}_DATABASE_URL"] = await make_database(f"stats_{name}")
    processes = Processes(tmp_path_factory.mktemp("stats-logs"))
    try:
        for name in ("player", "wallet", "lobby"):
            # Three services starting at once on a busy 2-core machine: more than the usual minute.
            processes.start(name, [str(BIN / f"tablium-{name}"), "serve"], env, f"{urls[name]}/ready", timeout_s=240)
        admin = f"admin{uuid.uuid4().hex[:8]}"
        account = ["--username", admin, "--email", f"{admin}@example.com", "--password", PASSWORD, "--role", "admin"]
        await asyncio.to_thread(
            subprocess.run,
            [str(BIN / "tablium-player"), "create-account", *account],
            env=env,
            check=True,
            capture_output=True,
        )
        yield {**urls, "env": env, "admin": admin}
    finally:
        processes.stop()
        await asyncio.to_thread(_rabbitmqctl, "delete_vhost", vhost)


async def _login(http: httpx.AsyncClient, player: str, username: str) -> dict[str, str]:
    response = await http.post(f"{player}/api/v1/auth/login", json={"login": username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def _wait_for(check: Callable[[], Awaitable[bool]], timeout_s: float = 60) -> None:
    async with asyncio.timeout(timeout_s):
        while not await check():  # noqa: ASYNC110 - polling other processes' state
            await asyncio.sleep(0.2)


class Wallet:
    """The wallet's internal API, as the lobby (development service keys, as in the test environment)."""

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


async def _hands_published(lobby_database_url: str) -> list[dict[str, Any]]:
    engine = create_async_engine(lobby_database_url)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(
                text("SELECT envelope->'data' FROM outbox WHERE type = 'lobby.hand_completed' ORDER BY seq")
            )
            return [row[0] for row in rows]
    finally:
        await engine.dispose()


async def test_bots_play_and_their_profiles_show_the_hands(services: dict[str, Any]) -> None:
    player_url, lobby_url = services["player"], services["lobby"]
    async with httpx.AsyncClient(timeout=30) as http:
        wallet = Wallet(http, services["wallet"])
        admin = await _login(http, player_url, services["admin"])
        table = await http.post(
            f"{lobby_url}/api/v1/tables",
            json={"name": "Stats", "small_blind": "1", "big_blind": "2", "seats": 2, "rake_bps": 500},
            headers=admin,
        )
        assert table.status_code == 201, table.text
        table_id = table.json()["id"]
        bots, accounts = [], {}
        for n in range(2):
            username = f"stats{uuid.uuid4().hex[:10]}"
            registered = await http.post(
                f"{player_url}/api/v1/auth/register",
                json={"username": username, "email": f"{username}@example.com", "password": PASSWORD},
            )
            assert registered.status_code == 201, registered.text
            player_id = registered.json()["id"]
            accounts[player_id] = await wallet.fund(player_id, FUNDS)
            token = (await _login(http, player_url, username))["Authorization"].removeprefix("Bearer ")
            bot = Bot(
                f"{lobby_url.replace('http://', 'ws://')}/api/v1/tables/{table_id}/ws",
                token,
                player_id,
                POLICIES["random"],
                rng=random.Random(n),
            )
            await bot.connect()
            bots.append(bot)
        for seat, bot in enumerate(bots):
            sat = await http.post(
                f"{lobby_url}/api/v1/tables/{table_id}/seats",
                json={"seat": seat, "buy_in": str(BUY_IN)},
                headers={"Authorization": f"Bearer {bot.token}"},
            )
            assert sat.status_code == 201, sat.text
        # Random play may bust someone before HANDS: whatever was played is what must show.
        await asyncio.gather(*(bot.play(HANDS, timeout_s=30) for bot in bots), return_exceptions=True)
        for bot in bots:
            left = await http.delete(
                f"{lobby_url}/api/v1/tables/{table_id}/seats/me", headers={"Authorization": f"Bearer {bot.token}"}
            )
            assert left.status_code == 200, left.text
        escrow = await wallet.account(f"table:{table_id}", "table_escrow")

        async def cashed_out() -> bool:
            return (await http.get(f"{lobby_url}/api/v1/tables/{table_id}")).json()["players"] == [] and (
                await wallet.balance(escrow)
            ) == 0

        await _wait_for(cashed_out)
        for bot in bots:
            await bot.close()

        hands = await _hands_published(services["env"]["TABLIUM_LOBBY_DATABASE_URL"])
        assert hands, "the bots played at least one hand"
        for bot in bots:
            mine = [p for hand in hands for p in hand["players"] if p["player_id"] == bot.player_id]

            async def counted(player_id: str = bot.player_id, expected: int = len(mine)) -> bool:
                profile = (await http.get(f"{player_url}/api/v1/players/{player_id}")).json()
                return bool(profile["stats"]["hands_played"] == expected)

            await _wait_for(counted)
            profile = (await http.get(f"{player_url}/api/v1/players/{bot.player_id}")).json()
            stats = profile["stats"]
            assert stats["hands_vpip"] == sum(p["vpip"] for p in mine)
            assert stats["hands_pfr"] == sum(p["pfr"] for p in mine)
            assert profile["xp"] >= 10 * len(mine)
            (usdt,) = stats["winnings"]
            net = sum(int(p["stack_after"]) - int(p["stack_before"]) for p in mine)
            # What the profile says the player won is what the wallet moved: rake is out of both.
            assert int(usdt["net_winnings"]) == net == await wallet.balance(accounts[bot.player_id]) - FUNDS
            assert int(usdt["rake_paid"]) == sum(int(p["rake"]) for p in mine)
