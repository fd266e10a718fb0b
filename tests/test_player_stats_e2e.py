"""Stats from real play: the wallet, the lobby and the player service as processes on one private
RabbitMQ vhost; bots registered with the player service play hands at a raked table over the
WebSocket; the player's profile shows those hands, and its net winnings equal what the wallet moved."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from tablium_lobby.bots import POLICIES, Bot

from tablium_kit.service_processes import ADMIN_PASSWORD, Platform, WalletLedger, running_platform
from tablium_kit.testing import RUN_ID
from tablium_kit.waiting import eventually, rows

FUNDS, BUY_IN, HANDS = 10_000, 200, 4
PASSWORD = ADMIN_PASSWORD


@pytest.fixture
async def services(
    tmp_path_factory: pytest.TempPathFactory, make_database: Callable[[str], Awaitable[str]]
) -> AsyncIterator[Platform]:
    async with running_platform(
        ("player", "wallet", "lobby"),
        vhost=f"tablium-test-{RUN_ID}-stats",
        databases=make_database,
        log_dir=tmp_path_factory.mktemp("stats-logs"),
        env={"TABLIUM_WALLET_CONSUME_EVENTS": "false"},
    ) as running:
        yield running


async def _login(http: httpx.AsyncClient, player: str, username: str) -> dict[str, str]:
    response = await http.post(f"{player}/api/v1/auth/login", json={"login": username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def _hands_published(lobby_database_url: str) -> list[dict[str, Any]]:
    sql = "SELECT envelope->'data' FROM outbox WHERE type = 'lobby.hand_completed' ORDER BY seq"
    return [row[0] for row in await rows(lobby_database_url, sql)]


async def test_bots_play_and_their_profiles_show_the_hands(services: Platform) -> None:
    player_url, lobby_url = services.urls["player"], services.urls["lobby"]
    async with httpx.AsyncClient(timeout=30) as http:
        wallet = WalletLedger(services.urls["wallet"], "lobby")
        admin = await _login(http, player_url, services.admin)
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

        await eventually(cashed_out)
        for bot in bots:
            await bot.close()

        hands = await _hands_published(services.env["TABLIUM_LOBBY_DATABASE_URL"])
        assert hands, "the bots played at least one hand"
        for bot in bots:
            mine = [p for hand in hands for p in hand["players"] if p["player_id"] == bot.player_id]

            async def counted(player_id: str = bot.player_id, expected: int = len(mine)) -> bool:
                profile = (await http.get(f"{player_url}/api/v1/players/{player_id}")).json()
                return bool(profile["stats"]["hands_played"] == expected)

            await eventually(counted)
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
    await wallet.aclose()
