"""Issue 11's chaos test: money keeps moving, exactly once, while the platform's infrastructure fails under it.

The three services (player, event, wallet) run as real processes (granian), consuming events, on a private
PostgreSQL cluster and a private RabbitMQ node of this test's own (``tablium_kit.private_infra``; the
shared ones serve everybody else's tests), after ``tablium-<svc> migrate`` has declared every queue.
A stream of money-moving work runs across them the whole time:

- players register with the player service; ``player.registered`` reaches the wallet, which records the
  player and opens their USDT account; an admin then credits them (the wallet refuses a player it has not
  heard of, so the credit waits for the event);
- ``blockchain.deposit_confirmed`` events, published to the broker as the blockchain service would (its
  ``source``, confirms, ``mandatory``), credit them twice each;
- tournaments through the event service's API: registrations (holds), the start (posts, fees to the
  house), a rebuy, hands reported as the lobby until one player is left, prizes paid from the pool. Every
  step calls the wallet's internal API; the event service and the wallet publish events through their
  outboxes.

While it runs, in turn: the private Postgres stops for a few seconds and starts again; the private
RabbitMQ node is shut down and started again; the wallet (whose process runs the consumer) is SIGKILLed
and started again; a forged ``blockchain.deposit_confirmed`` (``source`` the player service) is published.
Clients retry what the outages refuse (5xx, connection errors), as real ones do, with the same idempotency
keys.

Afterwards: every ``player.registered`` and every deposit is in the wallet's inbox, once, and had its effect
once (one account per player, one deposit transfer per deposit with its amount); every outbox is drained
(nothing stuck or parked) and every event published to a queue nobody consumes yet is in it (nothing lost
by a relay across the broker restart); the wallet's DLQ holds only the forged event, every other DLQ and
retry queue is empty; and the wallet's invariants hold: per asset, the balances of all accounts sum to
zero and nothing is pending; every account's counters are the sums of its transfers; every player's
balance is exactly their credit plus their deposits, minus the entries and rebuys the event service
recorded as paid, plus the prizes it recorded as paid (the forged deposit credited nothing).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aio_pika
import httpx
import jwt
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tablium_kit.auth import ServiceTokens, local_service_keys
from tablium_kit.db import create_engine
from tablium_kit.messaging import list_dead_letters
from tablium_kit.messaging.envelope import CONTENT_TYPE, CloudEvent, encode, new_event
from tablium_kit.messaging.signing import EventSigner
from tablium_kit.messaging.testing import signed_message
from tablium_kit.messaging.topology import QueueNames, consumed_types
from tablium_kit.private_infra import PrivatePostgres, PrivateRabbit
from tablium_kit.settings import ServiceSettings
from tablium_kit.testing import RUN_ID
from tablium_kit.waiting import eventually, rows

from .conftest import BIN, ROOT, free_port, wait_until_ready
from .conftest import SERVICES as INSTALLED

# The test publishes the chain's deposits itself, as the blockchain service would: no chain node here.
SERVICES = [name for name in INSTALLED if name != "blockchain"]

EXCHANGE = "tablium.events"
CREDIT = 1_000_000  # 1 USDT, in micro-USDT
BUY_IN, FEE = 1_000, 100
PG_OUTAGE_S = 5
RETRYABLE = {502, 503, 504}

pytestmark = pytest.mark.slow


# ---------------------------------------------------------------------------------------------- processes


@dataclass
class Service:
    name: str
    url: str
    env: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [str(BIN / f"tablium-{self.name}"), "serve"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
                start_new_session=True,  # its own process group: granian's workers go with it
            )
        wait_until_ready(f"{self.url}/ready", self.process, self.log, timeout_s=90)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.process is None:
            return
        process, self.process = self.process, None
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=15)


@dataclass
class Platform:
    postgres: PrivatePostgres
    rabbit: PrivateRabbit
    services: dict[str, Service]
    env: dict[str, str]

    def database(self, service: str) -> str:
        return self.postgres.url_for(f"chaos_{service}")

    def tokens(self, caller: str) -> ServiceTokens:
        return ServiceTokens.from_settings(ServiceSettings.from_env(caller, self.env))


@pytest.fixture
def chaos_platform(
    private_postgres: PrivatePostgres, private_rabbit: PrivateRabbit, tmp_path: Path
) -> Iterator[Platform]:
    ports = {name: free_port() for name in SERVICES}
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    env = {
        **os.environ,
        "TABLIUM_ENVIRONMENT": "test",
        "TABLIUM_LOG_JSON": "true",
        "TABLIUM_AMQP_URL": private_rabbit.url,
        "TABLIUM_EVENTS_EXCHANGE": EXCHANGE,
        "TABLIUM_CONSUME_EVENTS": "true",
        # The lobby's consumer (club membership) would take the tournament events this test counts as
        # waiting in the lobby's queue; no club is made here.
        "TABLIUM_LOBBY_CONSUME_EVENTS": "false",
        "TABLIUM_REDIS_NAMESPACE": f"test-{RUN_ID}-chaos-{uuid.uuid4().hex[:6]}",
        "TABLIUM_JWKS_URL": f"{urls['player']}/api/v1/auth/jwks",
        "TABLIUM_PLAYER_ARGON2_MEMORY_KIB": "1024",
        "TABLIUM_PLAYER_ARGON2_TIME_COST": "1",
        "TABLIUM_PLAYER_REGISTRATIONS_PER_IP": "100000",
        "TABLIUM_PLAYER_LOGIN_ATTEMPTS_PER_IP": "100000",
        "TABLIUM_EVENT_RECONCILE_INTERVAL_S": "1",
        **{f"TABLIUM_{name.upper()}_URL": url for name, url in urls.items()},
        **{f"TABLIUM_{name.upper()}_PORT": str(port) for name, port in ports.items()},
        **{f"TABLIUM_{name.upper()}_DATABASE_URL": private_postgres.url_for(f"chaos_{name}") for name in SERVICES},
        # Keys for the services and the callers the test plays: the lobby (hands) and the blockchain.
        **local_service_keys(sorted({*SERVICES, "lobby", "blockchain"}), tmp_path / "keys"),
    }
    logs = tmp_path / "logs"
    logs.mkdir()
    # The deploy step first: databases, migrations, and every consumer's queues on the private broker.
    migrating = {
        name: subprocess.Popen(
            [str(BIN / f"tablium-{name}"), "migrate"],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for name in SERVICES
    }
    for name, process in migrating.items():
        output, _ = process.communicate(timeout=120)
        assert process.returncode == 0, f"tablium-{name} migrate failed:\n{output.decode()[-3000:]}"
    services = {name: Service(name, urls[name], env, logs / f"{name}.log") for name in SERVICES}
    try:
        for service in services.values():
            service.start()
        yield Platform(private_postgres, private_rabbit, services, env)
    finally:
        for service in services.values():
            service.kill(signal.SIGTERM)


# ---------------------------------------------------------------------------------------------- clients


def user_token(env: dict[str, str], subject: str, roles: list[str]) -> dict[str, str]:
    """A user access token signed with the player service's own key, as its login would issue."""
    from tablium_player.app import signing_keys
    from tablium_player.settings import PlayerSettings

    keys = signing_keys(PlayerSettings.from_env("player", env))
    now = int(time.time())
    claims = {
        "iss": "tablium-player",
        "aud": "tablium",
        "sub": subject,
        "iat": now,
        "exp": now + 1800,
        "typ": "access",
        "roles": roles,
        "jti": uuid.uuid4().hex,
    }
    return {"Authorization": "Bearer " + jwt.encode(claims, keys.private_key, "RS256", {"kid": keys.kid})}


class Client:
    """HTTP calls that retry what an outage refuses (502/503/504, no connection), as real clients do."""

    def __init__(self) -> None:
        self.http = httpx.AsyncClient(timeout=15)
        self.retries = 0

    async def call(
        self,
        method: str,
        url: str,
        *,
        ok: set[int],
        ok_after_retry: frozenset[int] = frozenset(),
        retry_also: frozenset[int] = frozenset(),
        within: float = 90,
        **kwargs: Any,
    ) -> httpx.Response:
        """``ok_after_retry``: statuses that mean "already done" once an earlier try may have gone through."""
        deadline = time.monotonic() + within
        retried, last = False, ""
        while True:
            try:
                response = await self.http.request(method, url, **kwargs)
                if response.status_code in ok or (retried and response.status_code in ok_after_retry):
                    return response
                if response.status_code not in RETRYABLE | retry_also:
                    raise AssertionError(f"{method} {url}: {response.status_code} {response.text[:500]}")
                last = f"{response.status_code} {response.text[:300]}"
            except httpx.TransportError as exc:
                last = repr(exc)
            retried = True
            self.retries += 1
            if time.monotonic() > deadline:
                raise AssertionError(f"{method} {url}: still refused after {within} s: {last}")
            await asyncio.sleep(0.3)


class Blockchain:
    """Publishes deposits as the blockchain service would: its source, persistent, confirmed, mandatory.
    Retries through a broker outage with the same envelope (the wallet's inbox makes that once)."""

    def __init__(self, url: str, signer: EventSigner) -> None:
        self.url = url
        self.signer = signer  # the blockchain service's own key: consumers refuse what it did not sign
        self.connection: aio_pika.abc.AbstractRobustConnection | None = None
        self.channel: aio_pika.abc.AbstractChannel | None = None
        self.retries = 0

    async def publish(self, event: CloudEvent, within: float = 90) -> None:
        deadline = time.monotonic() + within
        message = signed_message(
            encode(event),
            signer=self.signer,
            message_id=str(event.id),
            type=event.type,
            content_type=CONTENT_TYPE,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        )
        while True:
            try:
                if self.connection is None or self.channel is None:
                    self.connection = await aio_pika.connect_robust(self.url + "?reconnect_interval=1", timeout=5)
                    self.channel = await self.connection.channel(publisher_confirms=True, on_return_raises=True)
                exchange = await self.channel.get_exchange(EXCHANGE, ensure=False)
                await asyncio.wait_for(exchange.publish(message, routing_key=event.type, mandatory=True), 5)
                return
            except Exception as exc:  # the broker is away: try again, the same envelope
                self.retries += 1
                if time.monotonic() > deadline:
                    raise AssertionError(f"could not publish {event.type} {event.id} within {within} s") from exc
                if self.connection is not None and self.connection.is_closed:
                    self.connection = self.channel = None
                await asyncio.sleep(0.5)

    async def close(self) -> None:
        if self.connection is not None:
            await self.connection.close()


def deposit_event(player_id: str, n: int, amount: int, *, service: str = "blockchain") -> CloudEvent:
    tx_hash = "0x" + uuid.uuid5(uuid.NAMESPACE_URL, f"{RUN_ID}-{player_id}-{n}").hex * 2
    data = {"chain_id": 1, "tx_hash": tx_hash, "log_index": n, "player_id": player_id, "asset": "USDT"}
    return new_event(
        service=service,
        type="blockchain.deposit_confirmed",
        subject=f"1:{tx_hash}:{n}",
        data={**data, "amount": str(amount)},
    )


# ---------------------------------------------------------------------------------------------- the stream


@dataclass
class Stream:
    platform: Platform
    client: Client = field(default_factory=Client)
    chain: Blockchain | None = None
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    players: dict[str, str] = field(default_factory=dict)  # player id -> username
    funded: asyncio.Queue[str] = field(default_factory=asyncio.Queue)
    # event id -> (player, tx hash, log index, amount)
    deposits: dict[str, tuple[str, str, int, int]] = field(default_factory=dict)
    tournaments: list[str] = field(default_factory=list)
    finished: int = 0

    def __post_init__(self) -> None:
        signer = EventSigner.from_settings(ServiceSettings.from_env("blockchain", self.platform.env))
        self.chain = Blockchain(self.platform.rabbit.url, signer)
        self.admin = user_token(self.platform.env, str(uuid.uuid4()), ["player", "admin", "tournament_director"])
        self.urls = {name: service.url for name, service in self.platform.services.items()}

    async def players_and_money(self) -> None:
        n = 0
        while not self.stopping.is_set():
            await self.one_player(n)
            n += 1
            await asyncio.sleep(0.1)

    async def one_player(self, n: int) -> None:
        username = f"chaos{n}_{uuid.uuid4().hex[:6]}"
        body = {"username": username, "email": f"{username}@example.com", "password": "a chaos test password"}
        player = self.urls["player"]
        response = await self.client.call(
            "POST", f"{player}/api/v1/auth/register", json=body, ok={201}, ok_after_retry=frozenset({409})
        )
        if response.status_code == 201:
            player_id = response.json()["id"]
        else:  # made by an earlier try whose answer was lost: who is it?
            login = await self.client.call(
                "POST", f"{player}/api/v1/auth/login", json={"login": username, "password": body["password"]}, ok={200}
            )
            player_id = jwt.decode(login.json()["access_token"], options={"verify_signature": False})["sub"]
        self.players[player_id] = username
        # Refused (404) until the wallet has handled player.registered.
        credit = {
            "player_id": player_id,
            "asset": "USDT",
            "amount": str(CREDIT),
            "reason": "chaos test credit",
            "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"credit-{player_id}")),
        }
        await self.client.call(
            "POST",
            f"{self.urls['wallet']}/api/v1/admin/wallet/credit",
            json=credit,
            headers=self.admin,
            ok={200, 201},
            retry_also=frozenset({404}),
        )
        self.funded.put_nowait(player_id)
        assert self.chain is not None
        for k in range(2):
            amount = 1_000 * (n % 7 + 1) + k
            event = deposit_event(player_id, k, amount)
            await self.chain.publish(event)
            self.deposits[str(event.id)] = (player_id, event.data["tx_hash"], k, amount)

    async def tournaments_loop(self) -> None:
        n = 0
        while not self.stopping.is_set():
            if self.funded.qsize() < 4:
                await asyncio.sleep(0.2)
                continue
            await self.tournament(n, [self.funded.get_nowait() for _ in range(4)])
            n += 1

    async def tournament(self, n: int, players: list[str]) -> None:
        event, admin, call = self.urls["event"], self.admin, self.client.call
        config = {
            "name": f"chaos {n}",
            "buy_in": str(BUY_IN),
            "fee": str(FEE),
            "seats_per_table": 6,
            "seed": n,
            "rebuy_until_level": 1,
            "rebuy_chips": "10000",
            "levels": [{"small_blind": "10", "big_blind": "20", "duration_s": 3600}],
        }
        created = await call("POST", f"{event}/api/v1/tournaments", json=config, headers=admin, ok={201})
        tid = created.json()["id"]
        self.tournaments.append(tid)
        url = f"{event}/api/v1/tournaments/{tid}"
        again = frozenset({409})
        await call("POST", f"{url}/open", headers=admin, ok={200}, ok_after_retry=again)
        for player in players:
            me = user_token(self.platform.env, player, ["player"])
            await call("POST", f"{url}/registrations", headers=me, ok={201}, ok_after_retry=again)
        await call("POST", f"{url}/start", headers=admin, ok={200}, ok_after_retry=again)
        rebuyer = user_token(self.platform.env, players[0], ["player"])
        await call("POST", f"{url}/rebuys", json={"request_id": str(uuid.uuid4())}, headers=rebuyer, ok={201})
        lobby = self.platform.tokens("lobby")
        for hand in range(12):
            status = (await call("GET", url, ok={200})).json()["status"]
            if status == "finished":
                self.finished += 1
                return
            assert status == "running", f"tournament {tid} is {status}"
            tables = (await call("GET", f"{url}/tables", ok={200})).json()
            table = next(t for t in tables if sum(s is not None for s in t["seats"]) >= 2)
            seats = [s for s in table["seats"] if s is not None]
            stacks = {str(s["entry"]): int(s["stack"]) for s in seats}
            if hand > 0:  # the first hand changes nothing: the rebuy's chips come with it
                winner, loser = str(seats[0]["entry"]), str(seats[-1]["entry"])
                stacks[winner] += stacks[loser]
                stacks[loser] = 0
            report = {"hand_id": f"h{hand}", "table": table["table"], "stacks": {e: str(s) for e, s in stacks.items()}}
            headers = {"Authorization": f"Bearer {lobby.token('event')}"}
            await call("POST", f"{event}/internal/v1/tournaments/{tid}/hands", json=report, headers=headers, ok={200})
        raise AssertionError(f"tournament {tid} did not finish in 12 hands")

    async def close(self) -> None:
        await self.client.http.aclose()
        if self.chain is not None:
            await self.chain.close()


# ---------------------------------------------------------------------------------------------- checks


async def scalar(engine: AsyncEngine, sql: str, **params: Any) -> Any:
    async with engine.connect() as conn:
        return (await conn.execute(text(sql), params)).scalar()


async def queue_depth(url: str, queue: str) -> int:
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        declared = await channel.declare_queue(queue, passive=True)
        return declared.declaration_result.message_count or 0


async def message_ids(url: str, queue: str) -> set[str]:
    """Every message id in ``queue`` (taken: the test is over)."""
    connection = await aio_pika.connect(url)
    ids: set[str] = set()
    async with connection:
        channel = await connection.channel()
        declared = await channel.declare_queue(queue, passive=True)
        while (message := await declared.get(no_ack=True, fail=False)) is not None:
            ids.add(str(message.message_id))
    return ids


# ---------------------------------------------------------------------------------------------- the test


@pytest.fixture
async def engines(chaos_platform: Platform) -> AsyncIterator[dict[str, AsyncEngine]]:
    made = {name: create_engine(chaos_platform.database(name), pool_size=2) for name in SERVICES}
    yield made
    for engine in made.values():
        await engine.dispose()


async def test_money_moves_exactly_once_through_database_broker_and_consumer_failures(
    chaos_platform: Platform, engines: dict[str, AsyncEngine]
) -> None:
    platform = chaos_platform
    stream = Stream(platform)
    started = time.monotonic()
    timings: dict[str, float] = {}
    workers = [
        asyncio.create_task(stream.players_and_money(), name="players"),
        asyncio.create_task(stream.tournaments_loop(), name="tournaments"),
    ]

    async def progress(players: int, what: str) -> None:
        async def enough() -> bool | str:
            for worker in workers:
                if worker.done():
                    worker.result()  # its failure, now
            return len(stream.players) >= players or f"{len(stream.players)} players"

        await eventually(enough, f"the stream stalled {what}", within_s=120)
        timings[what] = round(time.monotonic() - started, 1)

    try:
        await progress(8, "before the database outage")
        await asyncio.to_thread(platform.postgres.stop)
        await asyncio.sleep(PG_OUTAGE_S)
        await asyncio.to_thread(platform.postgres.start)
        await progress(len(stream.players) + 10, "after the database outage")

        await asyncio.to_thread(platform.rabbit.stop)
        await asyncio.sleep(2)
        await asyncio.to_thread(platform.rabbit.start)
        await progress(len(stream.players) + 10, "after the broker restart")

        await asyncio.to_thread(platform.services["wallet"].kill)
        await asyncio.sleep(1)
        await asyncio.to_thread(platform.services["wallet"].start)
        await progress(len(stream.players) + 10, "after the wallet was killed")

        somebody = next(iter(stream.players))
        forged = deposit_event(somebody, 99, 10**12, service="player")  # the right type, the wrong source
        assert stream.chain is not None
        await stream.chain.publish(forged)
        await progress(len(stream.players) + 5, "after the forged event")
        assert stream.finished >= 2, f"only {stream.finished} tournaments finished during the chaos"
    finally:
        # The stream ends its current round (a tournament is played to its end), within bounds.
        stream.stopping.set()
        done, running = await asyncio.wait(workers, timeout=120)
        for worker in running:
            worker.cancel()
        await stream.close()
    assert not running, f"the stream did not end its round: {[w.get_name() for w in running]}"
    for worker in done:
        worker.result()
    timings["stream stopped"] = round(time.monotonic() - started, 1)

    wallet, event, player = engines["wallet"], engines["event"], engines["player"]
    registered_ids = {str(r[0]) for r in await rows(player, "SELECT id FROM outbox WHERE type = 'player.registered'")}
    expected_inbox = registered_ids | set(stream.deposits)

    async def handled() -> bool | str:
        inbox = {str(r[0]) for r in await rows(wallet, "SELECT event_id FROM inbox WHERE consumer = 'wallet'")}
        missing = expected_inbox - inbox
        return not missing or f"{len(missing)} of {len(expected_inbox)} events not handled yet"

    await eventually(handled, "the wallet did not handle every event")

    async def drained() -> bool | str:
        left = {
            name: await scalar(engine, "SELECT count(*) FROM outbox WHERE published_at IS NULL")
            for name, engine in engines.items()
        }
        return not any(left.values()) or f"unpublished: {left}"

    await eventually(drained, "an outbox was not drained")

    async def settled() -> bool | str:
        queues = [QueueNames.for_service(s) for s in ("wallet", "event")]
        depths = {q: await queue_depth(platform.rabbit.url, q) for n in queues for q in (n.main, n.retry)}
        pending = await scalar(wallet, "SELECT count(*) FROM pending_transfers")
        open_regs = await scalar(event, "SELECT count(*) FROM registrations WHERE status IN ('holding', 'held')")
        owed = await scalar(event, "SELECT count(*) FROM prizes WHERE status = 'owed'")
        state = {"queues": depths, "pending": pending, "holding": open_regs, "owed": owed}
        return (not any(depths.values()) and not pending and not open_regs and not owed) or str(state)

    await eventually(settled, "the platform did not settle")
    timings["settled"] = round(time.monotonic() - started, 1)

    # Exactly once: one account per player, the player known, one deposit transfer per deposit.
    players = set(stream.players)
    accounts = await rows(wallet, "SELECT owner, count(*) FROM accounts WHERE kind = 'player' GROUP BY owner")
    assert {owner: count for owner, count in accounts if count != 1} == {}
    assert {owner for owner, _ in accounts} >= {f"player:{p}" for p in players}
    known = {str(r[0]) for r in await rows(wallet, "SELECT id FROM players")}
    assert known >= players
    from tablium_wallet.events.handlers import deposit_transfer_id

    deposits = {
        str(r[0]): int(r[1]) for r in await rows(wallet, "SELECT id, amount FROM transfers WHERE code = 'deposit'")
    }
    expected_deposits = {
        str(deposit_transfer_id(1, tx_hash, k)): amount for _, tx_hash, k, amount in stream.deposits.values()
    }
    assert deposits == expected_deposits, "each deposit credited once, the forged one never"

    # The DLQs: the forged event in the wallet's, nothing anywhere else; nothing waiting for a retry.
    async def only_the_forged_one() -> bool | str:
        dead = await list_dead_letters(platform.rabbit.url, QueueNames.for_service("wallet"))
        found = [(d.message_id, d.reason) for d in dead]
        return found == [(str(forged.id), "forged")] or f"the wallet's DLQ holds {found}"

    await eventually(only_the_forged_one, "the wallet's DLQ is not just the forged event", within_s=30)
    for service in consumed_types():
        if service != "wallet":
            assert await list_dead_letters(platform.rabbit.url, QueueNames.for_service(service)) == [], service

    # Nothing lost by a relay: every event for a consumer not running here is waiting in its queue (the
    # wallet, the event service and the player consume theirs: the player its hand and tournament stats;
    # the rakeback service its wallet postings and levels, the club service the lobby's table events).
    waiting: dict[str, int] = {}
    for service, types in consumed_types().items():
        if service in ("wallet", "event", "player", "rakeback", "club"):
            continue
        published = {
            str(r[0])
            for engine in engines.values()
            for r in await rows(engine, "SELECT id FROM outbox WHERE type = ANY(:types)", types=types)
        }
        queued = await message_ids(platform.rabbit.url, QueueNames.for_service(service).main)
        assert published <= queued, f"{len(published - queued)} of {len(published)} events for the {service} lost"
        waiting[service] = len(published)
    assert min(waiting[s] for s in ("blockchain", "lobby")) > 0, f"nothing was checked: {waiting}"

    # The wallet's invariants.
    totals = await rows(
        wallet,
        "SELECT asset, sum(credits_posted) - sum(debits_posted), sum(credits_pending) - sum(debits_pending), "
        "sum(debits_pending) FROM accounts GROUP BY asset",
    )
    assert [(asset, int(a), int(b), int(c)) for asset, a, b, c in totals] == [("USDT", 0, 0, 0)]
    drift = await rows(
        wallet,
        "SELECT a.id, a.credits_posted - a.debits_posted, coalesce(m.net, 0) FROM accounts a LEFT JOIN ("
        " SELECT acc, sum(v) AS net FROM ("
        "  SELECT debit_account_id AS acc, -amount AS v FROM transfers WHERE flags & 10 = 0"
        "  UNION ALL SELECT credit_account_id, amount FROM transfers WHERE flags & 10 = 0) t GROUP BY acc"
        ") m ON m.acc = a.id WHERE a.credits_posted - a.debits_posted <> coalesce(m.net, 0)",
    )
    assert drift == [], "account counters that are not the sums of their transfers"

    expected = dict.fromkeys(players, CREDIT)
    for player_id, _, _, amount in stream.deposits.values():
        expected[player_id] += amount
    for sql, sign in (
        ("SELECT player_id, amount, status FROM registrations", -1),
        ("SELECT player_id, amount, status FROM purchases", -1),
        ("SELECT player_id, amount, status FROM prizes", 1),
    ):
        for player_id, amount, status in await rows(event, sql):
            assert status in ("posted", "paid"), f"{sql}: {player_id} {status}"
            expected[str(player_id)] += sign * int(amount)
    balances = {
        owner.removeprefix("player:"): int(balance)
        for owner, balance in await rows(
            wallet, "SELECT owner, credits_posted - debits_posted FROM accounts WHERE kind = 'player'"
        )
    }
    assert balances == expected
    print(  # noqa: T201 - what the run did, for the record (pytest -s)
        f"chaos: {len(players)} players, {len(stream.deposits)} deposits, {len(stream.tournaments)} tournaments "
        f"({stream.finished} finished), {stream.client.retries} HTTP retries, "
        f"{stream.chain.retries if stream.chain else 0} publish retries; events waiting per consumer {waiting}; "
        f"timings {timings}"
    )
