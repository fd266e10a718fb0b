"""``tablium-bots``: bots that register or log in, buy in and play over the table WebSocket.

Everything goes through the public API (the gateway, or a service's own port with --lobby/--player):
``tablium-bots play --table <id> --count 3 --policy tag`` registers three bot players, credits them with
an admin token if given (--admin-token; else their wallets must hold the buy-in), sits them down and plays.
"""

from __future__ import annotations

import asyncio
import random
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

import click
import httpx

from tablium_lobby.bots.client import Bot
from tablium_lobby.bots.credentials import Credentials
from tablium_lobby.bots.human import HumanPlayer
from tablium_lobby.bots.policy import POLICIES


@dataclass
class Endpoints:
    player: str
    lobby: str
    wallet: str

    @property
    def ws(self) -> str:
        return self.lobby.replace("https://", "wss://").replace("http://", "ws://")


async def register(http: httpx.AsyncClient, base: str) -> tuple[Credentials, str]:
    """A new bot account: its login and player id."""
    name = f"bot{secrets.token_hex(5)}"
    password = secrets.token_urlsafe(18)
    body = {"username": name, "email": f"{name}@bots.tablium.invalid", "password": password}
    response = await http.post(f"{base}/api/v1/auth/register", json=body)
    response.raise_for_status()
    return await login(http, base, name, password)


async def sit(http: httpx.AsyncClient, e: Endpoints, table_id: str, account: Credentials, buy_in: int | None) -> int:
    table = (await http.get(f"{e.lobby}/api/v1/tables/{table_id}")).json()
    taken = {p["seat"] for p in table["players"]}
    amount = buy_in or int(table["max_buy_in"])
    for seat in range(table["seats"]):
        if seat in taken:
            continue
        response = await account.request(
            "POST", f"{e.lobby}/api/v1/tables/{table_id}/seats", json={"seat": seat, "buy_in": str(amount)}
        )
        if response.status_code == 201:
            return seat
        if response.status_code != 409:
            raise click.ClickException(f"sitting down failed: {response.status_code} {response.text}")
    raise click.ClickException("the table is full")


class RebuyingBot(Bot):
    """A demo bot that tops its stack back up to the maximum buy-in whenever it goes broke."""

    def __init__(
        self, *args: Any, http: httpx.AsyncClient, login: Credentials, lobby: str, table_id: str, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.http = http
        self.login = login
        self.lobby = lobby
        self.table_id = table_id
        self.max_buy_in: str | None = None  # the table's, read once (a table's stakes do not change)

    async def on_message(self, message: dict[str, Any]) -> None:
        await super().on_message(message)
        if message.get("type") == "round-result" and message.get("stacks", {}).get(self.player_id) == "0":
            if self.max_buy_in is None:
                table = (await self.http.get(f"{self.lobby}/api/v1/tables/{self.table_id}")).json()
                self.max_buy_in = table["max_buy_in"]
            await self.login.request(
                "POST", f"{self.lobby}/api/v1/tables/{self.table_id}/seats/me/top-up", json={"amount": self.max_buy_in}
            )


async def run(
    e: Endpoints,
    table_id: str,
    count: int,
    policy: str,
    hands: int,
    admin_token: str | None,
    funds: int,
    think_s: float,
) -> None:
    rng = random.Random()  # noqa: S311 - bots' choices, not security
    async with httpx.AsyncClient(timeout=15) as http:
        bots: list[Bot] = []
        for _ in range(count):
            account, player_id = await register(http, e.player)
            if admin_token:
                await credit(http, e, admin_token, player_id, funds)
            await sit(http, e, table_id, account, None)
            bot = RebuyingBot(
                f"{e.ws}/api/v1/tables/{table_id}/ws",
                account.access_token,
                player_id,
                POLICIES[policy],
                rng=random.Random(rng.random()),  # noqa: S311
                think_s=think_s,
                http=http,
                login=account,
                lobby=e.lobby,
                table_id=table_id,
            )
            bots.append(bot)
            click.echo(f"bot {player_id} seated at {table_id}")
        await asyncio.gather(*(bot.play(hands, timeout_s=10**7) for bot in bots))
        for bot in bots:
            click.echo(f"bot {bot.player_id}: {bot.hands_ended} hands, {len(bot.errors)} errors")
            await bot.close()


async def credit(http: httpx.AsyncClient, e: Endpoints, admin_token: str, player_id: str, funds: int) -> None:
    body: dict[str, Any] = {
        "player_id": player_id,
        "asset": "USDT",
        "amount": str(funds),
        "reason": "bot funding",
        "id": str(uuid.uuid4()),
    }
    headers = {"Authorization": f"Bearer {admin_token}"}
    for _ in range(50):  # the wallet learns of a new player from player.registered, shortly after
        response = await http.post(f"{e.wallet}/api/v1/admin/wallet/credit", json=body, headers=headers)
        if response.status_code in (200, 201):
            return
        await asyncio.sleep(0.2)
    raise click.ClickException(f"funding failed: {response.status_code} {response.text}")


@click.group(help="Tablium bots: players that sit at lobby tables and play over the WebSocket.")
def main() -> None:
    pass


@main.command(help="Register COUNT bots, buy them in at TABLE and play.")
@click.option("--table", "table_id", required=True, help="The table's id.")
@click.option("--count", default=2, show_default=True, type=click.IntRange(1, 10))
@click.option("--policy", default="random", show_default=True, type=click.Choice(sorted(POLICIES)))
@click.option("--hands", default=10**9, show_default=False, type=int, help="Stop after this many hands.")
@click.option("--gateway", default="http://127.0.0.1:8000", show_default=True, help="Where every API is.")
@click.option("--player", "player_url", default=None, help="The player service (default: the gateway).")
@click.option("--lobby", "lobby_url", default=None, help="The lobby service (default: the gateway).")
@click.option("--wallet", "wallet_url", default=None, help="The wallet service (default: the gateway).")
@click.option("--admin-token", default=None, envvar="TABLIUM_BOTS_ADMIN_TOKEN", help="Credits each bot's wallet.")
@click.option("--funds", default=100_000, show_default=True, type=int)
@click.option("--think", "think_s", default=0.5, show_default=True, type=float, help="Seconds before acting.")
def play(
    table_id: str,
    count: int,
    policy: str,
    hands: int,
    gateway: str,
    player_url: str | None,
    lobby_url: str | None,
    wallet_url: str | None,
    admin_token: str | None,
    funds: int,
    think_s: float,
) -> None:
    e = Endpoints(player=player_url or gateway, lobby=lobby_url or gateway, wallet=wallet_url or gateway)
    asyncio.run(run(e, table_id, count, policy, hands, admin_token, funds, think_s))


async def login(http: httpx.AsyncClient, base: str, name: str, password: str) -> tuple[Credentials, str]:
    """An existing player's login and id."""
    response = await http.post(f"{base}/api/v1/auth/login", json={"login": name, "password": password})
    if response.status_code != 200:
        raise click.ClickException(f"login failed: {response.status_code} {response.text}")
    credentials = Credentials.from_pair(http, base, response.json())
    session = await credentials.request("GET", f"{base}/api/v1/auth/session")
    session.raise_for_status()
    return credentials, str(session.json()["player_id"])


async def sit_and_play(e: Endpoints, table_id: str | None, name: str, password: str, buy_in: int | None) -> None:
    async with httpx.AsyncClient(timeout=15) as http:
        account, player_id = await login(http, e.player, name, password)
        if table_id is None:
            query = {"private": "false", "min_free_seats": "1"}
            free = (await http.get(f"{e.lobby}/api/v1/tables", params=query)).json()
            if not free:
                raise click.ClickException("no public table has a free seat: pass --table")
            table_id = str(free[0]["id"])
        seat = await sit(http, e, table_id, account, buy_in)
        click.echo(f"{name} sits at table {table_id}, seat {seat}; Ctrl-C leaves (cashing out after the hand)")
        player = HumanPlayer(f"{e.ws}/api/v1/tables/{table_id}/ws", account.access_token, player_id)
        try:
            await player.play(10**9, timeout_s=10**7)
        finally:
            await player.close()
            await account.request("DELETE", f"{e.lobby}/api/v1/tables/{table_id}/seats/me")


@main.command(help="Sit at a table yourself (a demo login) and play from this terminal, against bots.")
@click.option("--table", "table_id", default=None, help="The table's id (default: a public table with a free seat).")
@click.option("--login", "name", default="alice", show_default=True)
@click.password_option("--password", default="tablium-demo-password", confirmation_prompt=False, prompt=False)
@click.option("--buy-in", default=None, type=int, help="Chips to buy in with (default: the table's maximum).")
@click.option("--gateway", default="http://127.0.0.1:8000", show_default=True, help="Where every API is.")
def sit_in(table_id: str | None, name: str, password: str, buy_in: int | None, gateway: str) -> None:
    e = Endpoints(player=gateway, lobby=gateway, wallet=gateway)
    try:
        asyncio.run(sit_and_play(e, table_id, name, password, buy_in))
    except KeyboardInterrupt:
        click.echo("left the table")
