"""The chaos test's cast: lobby processes on a private RabbitMQ node, players that come and go, and SQL on the
lobby's and the wallet's databases for the final accounting (test_chaos.py)."""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aio_pika
import httpx
import websockets
from lobby_support import bearer, lobby_env, user_token
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from tablium_lobby.bots import POLICIES, Bot

from tablium_kit.messaging.testing import AmqpNames
from tablium_kit.service_processes import ServiceProcess, start_service

RETRYABLE = {502, 503, 504}
BUY_IN_RANGE = (80, 200)  # blinds 1/2, 40-100 big blinds


@dataclass
class Lobbies:
    """The lobby instances alive now (one database, one Redis namespace, the private broker)."""

    env: dict[str, str]
    alive: dict[str, ServiceProcess] = field(default_factory=dict)
    every: list[ServiceProcess] = field(default_factory=list)

    def start(self, name: str) -> ServiceProcess:
        """Blocking (it migrates and waits for /health): run it in a thread while play goes on."""
        lobby = start_service("lobby", {**self.env, "TABLIUM_LOBBY_INSTANCE_ID": name})
        self.every.append(lobby)
        self.alive[name] = lobby
        return lobby

    def start_wallet(self, env: dict[str, str], port: int) -> ServiceProcess:
        """The wallet, on a port chosen first (the lobbies' settings name it), stopped with the lobbies."""
        wallet = start_service("wallet", env, port=port)
        self.every.append(wallet)
        return wallet

    def kill(self, name: str) -> None:
        self.alive.pop(name).kill()

    def urls(self) -> list[str]:
        return [lobby.url for lobby in self.alive.values()]

    def stop_all(self) -> None:
        """SIGKILL: nothing of theirs outlives the test (leases expire, the databases are dropped)."""
        for process in self.every:
            process.signal(signal.SIGKILL)
        for process in self.every:
            process.process.wait(timeout=10)
            process.log.unlink(missing_ok=True)


def chaos_lobby_env(
    database_url: str, amqp_url: str, exchange: str, wallet_url: str, run_id: str, namespace: str, jwks_url: str
) -> dict[str, str]:
    names = AmqpNames(run_id, url=amqp_url)
    names.exchange = exchange
    return {
        **lobby_env(database_url, names, wallet_url, run_id),
        "TABLIUM_LOBBY_AMQP_URL": amqp_url,
        "TABLIUM_LOBBY_REDIS_NAMESPACE": namespace,
        "TABLIUM_LOBBY_JWKS_URL": jwks_url,
        "TABLIUM_LOG_LEVEL": "WARNING",
        # The holder's death is noticed fast; an absent player is sat out after a second and cashed out
        # three seconds later (so long disconnects free seats and cash out mid-run).
        "TABLIUM_LOBBY_LEASE_TTL_S": "1.5",
        "TABLIUM_LOBBY_LEASE_RENEW_S": "0.3",
        "TABLIUM_LOBBY_DISCONNECT_GRACE_S": "1",
        "TABLIUM_LOBBY_SIT_OUT_TIMEOUT_S": "3",
    }


class Http:
    """Calls to any live lobby instance; a transport error or a 5xx is retried on another (as a client
    behind a load balancer would), so a request may have been applied by an instance that then died."""

    def __init__(self, lobbies: Lobbies, rng: random.Random) -> None:
        self.lobbies = lobbies
        self.rng = rng
        self.client = httpx.AsyncClient(timeout=15)

    async def call(self, method: str, path: str, player: str | None = None, **kwargs: Any) -> httpx.Response:
        last = ""
        extra = kwargs.pop("headers", {})
        for _ in range(60):
            urls = self.lobbies.urls()
            headers = bearer(player) if player else extra
            try:
                response = await self.client.request(method, self.rng.choice(urls) + path, headers=headers, **kwargs)
                if response.status_code not in RETRYABLE:
                    return response
                last = f"{response.status_code} {response.text[:200]}"
            except httpx.TransportError as exc:
                last = repr(exc)
            await asyncio.sleep(0.2)
        raise AssertionError(f"{method} {path}: still failing: {last}")

    async def aclose(self) -> None:
        await self.client.aclose()


@dataclass
class Player:
    id: str
    table_id: str
    seat: int
    rng: random.Random
    stays: bool  # never leaves nor stays away long: still seated at the end
    sat_down: int = 0
    left: int = 0
    disconnects: int = 0
    refused: list[str] = field(default_factory=list)
    received: list[dict[str, Any]] = field(default_factory=list)

    async def my_seat(self, http: Http) -> dict[str, Any] | None:
        view = (await http.call("GET", f"/api/v1/tables/{self.table_id}")).json()
        return next((p for p in view["players"] if p["player_id"] == self.id), None)

    async def ensure_seated(self, http: Http) -> None:
        seat = await self.my_seat(http)
        if seat is not None:
            return
        body = {"seat": self.seat, "buy_in": str(self.rng.randint(*BUY_IN_RANGE))}
        response = await http.call("POST", f"/api/v1/tables/{self.table_id}/seats", self.id, json=body)
        if response.status_code == 201:
            self.sat_down += 1
        else:  # the seat still being cashed out, a buy-in refused, an earlier try that went through
            assert response.status_code in (409, 404), response.text
            self.refused.append(response.text[:200])

    async def leave(self, http: Http) -> None:
        response = await http.call("DELETE", f"/api/v1/tables/{self.table_id}/seats/me", self.id)
        assert response.status_code in (200, 404, 409), response.text
        if response.status_code == 200:
            self.left += 1

    async def session(self, lobbies: Lobbies, until: asyncio.Event) -> None:
        """One socket to a random live instance, played on for a while or until the instance dies."""
        url = self.rng.choice(lobbies.urls()).replace("http://", "ws://", 1)
        bot = Bot(
            f"{url}/api/v1/tables/{self.table_id}/ws",
            user_token(self.id),
            self.id,
            POLICIES["random"],
            rng=random.Random(self.rng.random()),
        )
        try:
            await bot.connect()
            playing = asyncio.ensure_future(bot.play(10**6, timeout_s=600))
            stop = asyncio.ensure_future(until.wait())
            try:
                await asyncio.wait(
                    [playing, stop], timeout=self.rng.uniform(0.3, 3.0), return_when=asyncio.FIRST_COMPLETED
                )
            finally:  # the socket's end (the instance died, or this drop) is this session's end
                for task in (playing, stop):
                    task.cancel()
                await asyncio.gather(playing, stop, return_exceptions=True)
        except (OSError, websockets.InvalidHandshake, websockets.ConnectionClosed):
            pass  # the instance died under us: reconnect elsewhere
        finally:
            with contextlib.suppress(Exception):
                await bot.close()
            self.received += bot.received
            self.disconnects += 1

    async def run(self, http: Http, lobbies: Lobbies, stopping: asyncio.Event) -> None:
        """Sit, play, drop the socket at random, come back (soon; sometimes after the sit-out or the
        cash-out timeout); now and then leave the table and sit down again."""
        while not stopping.is_set():
            await self.ensure_seated(http)
            await self.session(lobbies, stopping)
            roll = self.rng.random()
            if self.stays or roll < 0.75:
                await asyncio.sleep(self.rng.uniform(0.0, 0.5))  # a blip: within the grace period
            elif roll < 0.85:
                await asyncio.sleep(self.rng.uniform(1.2, 2.5))  # sat out, then back
            elif roll < 0.92:
                await asyncio.sleep(self.rng.uniform(4.5, 6.0))  # cashed out by the timeout
            else:
                await self.leave(http)
                await asyncio.sleep(self.rng.uniform(0.0, 1.0))

    async def keep_socket(self, lobbies: Lobbies, until: asyncio.Event) -> None:
        """Connected to the end (so never sat out), reconnecting if its instance dies."""
        while not until.is_set():
            await self.session(lobbies, until)


async def rows(engine: AsyncEngine, sql: str, **params: Any) -> list[Any]:
    async with engine.connect() as connection:
        return list((await connection.execute(text(sql), params)).all())


async def scalar(engine: AsyncEngine, sql: str, **params: Any) -> Any:
    async with engine.connect() as connection:
        return await connection.scalar(text(sql), params)


async def hands_done(engine: AsyncEngine, table_ids: list[str], since: int = 0) -> dict[str, int]:
    """Hands finished per table among those numbered above ``since`` (hand numbers count per table)."""
    done = dict.fromkeys(table_ids, 0)
    for table_id, count in await rows(
        engine,
        "SELECT table_id::text, count(*) FROM hands WHERE status <> 'running' AND hand_no > :since GROUP BY 1",
        since=since,
    ):
        done[table_id] = count
    return done


async def wait_for(check: Callable[[], Awaitable[bool | str]], what: str, within: float = 120) -> None:
    """Polls another process's state; ``within`` only bounds a hang (the test asserts what happened, not when)."""
    last: bool | str = False
    try:
        async with asyncio.timeout(within):
            while (last := await check()) is not True:  # noqa: ASYNC110 - another process's state
                await asyncio.sleep(0.1)
    except TimeoutError:
        raise AssertionError(f"{what}: {last}") from None


async def queued_ids(url: str, queue: str) -> list[str]:
    """Every message id in ``queue`` (taken: the test is over), duplicates kept."""
    connection = await aio_pika.connect(url)
    ids: list[str] = []
    async with connection:
        channel = await connection.channel()
        declared = await channel.declare_queue(queue, passive=True)
        while (message := await declared.get(no_ack=True, fail=False)) is not None:
            ids.append(str(message.message_id))
    return ids
