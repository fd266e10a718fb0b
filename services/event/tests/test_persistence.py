"""The engine's persistence (snapshot + fact journal, the live engine kept in process) and starts cut short.

Against the real wallet (a separate process), Postgres and RabbitMQ names, like test_service.py, whose
fixtures and helpers these tests share. Snapshots are taken every few facts here, so loading always
replays a journal tail, and entries are posted at the start in chunks of a few.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
import test_service
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select, text
from tablium_event.clients.wallet import Wallet
from tablium_event.db import journal as journal_module
from tablium_event.db.models import Fact, Registration, Snapshot, TournamentRow
from tablium_event.domain import engine as engine_module
from tablium_event.domain.config import TournamentConfig
from tablium_event.domain.engine import Tournament
from tablium_event.domain.instructions import SeatPlayer
from tablium_event.domain.simulator import TableRunner, play_hand
from tablium_event.services import engines
from tablium_event.services.cache import Live, LiveEngines
from tablium_event.services.tournaments import Tournaments
from tablium_event.settings import EventSettings
from test_service import (
    DIRECTOR,
    SERVICE,
    Ledger,
    SessionFactory,
    instructions_of,
    ints,
    new_tournament,
    register_players,
    wire,
)

from tablium_kit.auth import ServiceTokens
from tablium_kit.messaging.testing import AmqpNames

# test_service's wallet process, ledger and sessions (a wallet of this module's own) and its skip mark.
wallet_url = test_service.wallet_url
ledger = test_service.ledger
sessions = test_service.sessions
pytestmark = test_service.pytestmark

SNAPSHOT_EVERY = 7
Report = Callable[[int, dict[str, Any]], Awaitable[dict[str, Any]]]


client = test_service.client


@pytest.fixture(scope="module")
async def settings(
    make_database: Callable[[str], Awaitable[str]],
    amqp_names: AmqpNames,
    wallet_url: str,
) -> EventSettings:
    return test_service.event_settings(
        await make_database("event_persistence"),
        amqp_names,
        wallet_url,
        snapshot_every=str(SNAPSHOT_EVERY),
        wallet_batch_size="4",
    )


@pytest.fixture
async def other_process(settings: EventSettings) -> AsyncIterator[Tournaments]:
    """A second event service on the same database: its own engines in memory, its own wallet client."""
    tournaments = Tournaments(settings, Wallet(settings.wallet_url, ServiceTokens.from_settings(settings)))
    yield tournaments
    await tournaments.wallet.aclose()


def live_service(client: AsyncTestClient) -> Tournaments:
    tournaments: Tournaments = client.app.state.tournaments
    return tournaments


def comparable(engine: Tournament) -> Any:
    """The state as stored: JSON (int keys become strings, tuples lists) on both sides of a comparison.
    The payout table is computed when first read (a lobby read does): computed on both sides."""
    assert engine.payouts is not None
    return json.loads(json.dumps(engine.to_state()))


async def replayed(settings: EventSettings, sessions: SessionFactory, tournament_id: str) -> tuple[int, Any]:
    """(version, state) loaded by a fresh process from the snapshot and the journal after it."""
    fresh = Tournaments(settings, Wallet(settings.wallet_url, ServiceTokens.from_settings(settings)))
    async with sessions() as session:
        row = await session.get(TournamentRow, uuid.UUID(tournament_id))
        assert row is not None
        live = await engines.up_to_date(session, row.id, row.version, None)
        assert live.version == row.version
    await fresh.wallet.aclose()
    return live.version, comparable(live.engine)


def assert_live_is_replayed(tournaments: Tournaments, tournament_id: str, expected: tuple[int, Any]) -> None:
    live = tournaments.engines.peek(uuid.UUID(tournament_id))
    if expected[1]["status"] in ("finished", "cancelled"):
        assert live is None, "an engine that is over is not kept"
        return
    assert live is not None, "the live engine is kept after a fact"
    assert live.version == expected[0]
    assert comparable(live.engine) == expected[1], "snapshot + journal replay = the live engine"


async def drive(
    client: AsyncTestClient,
    tournament_id: str,
    rng: random.Random,
    report: Report,
    after_hand: Callable[[int], Awaitable[None]] | None = None,
) -> int:
    """The lobby's part (as in test_service.play_to_the_end), reporting each hand through ``report``."""
    runner = TableRunner()
    stacks: dict[int, int] = {}
    for table in ints((await client.get(f"/api/v1/tournaments/{tournament_id}/tables")).json()):
        for seat, occupant in enumerate(table["seats"]):
            if occupant is not None:
                runner.apply(
                    [SeatPlayer(occupant["entry"], occupant["player"], table["table"], seat, occupant["stack"], "")]
                )
                stacks[occupant["entry"]] = occupant["stack"]
        runner.start_dealing(table["table"])
    hands = 0
    weights = (0.75, 0.22, 0.03)  # busts now and then: long enough a tournament for every kind of fact
    while (await client.get(f"/api/v1/tournaments/{tournament_id}")).json()["status"] == "running":
        table = runner.dealing[rng.randrange(len(runner.dealing))]
        after = play_hand(rng, list(runner.seated[table].values()), stacks, weights)
        runner.stop_dealing(table)
        body = {"hand_id": f"h{hands}", "table": table, "stacks": {str(e): s for e, s in after.items()}}
        answer = await report(hands, body)
        stacks.update(after)
        runner.apply(instructions_of(answer))
        if table not in runner.held and table in runner.seated:
            runner.start_dealing(table)
        assert runner.moves_mid_hand == 0
        hands += 1
        if after_hand is not None:
            await after_hand(hands)
    return hands


def over_http(client: AsyncTestClient, tournament_id: str) -> Report:
    async def report(_: int, body: dict[str, Any]) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {SERVICE.token('event')}"}
        response = await client.post(
            f"/internal/v1/tournaments/{tournament_id}/hands", json=wire(body), headers=headers
        )
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        return answer

    return report


async def test_snapshot_and_journal_replay_to_exactly_the_live_engine(
    client: AsyncTestClient,
    ledger: Ledger,
    settings: EventSettings,
    sessions: SessionFactory,
) -> None:
    """A random tournament through the service, with every kind of fact: after each one a fresh process
    loading snapshot + journal gets the live engine's exact state, also after the live process restarts
    (its engines forgotten), and a refused fact leaves no changed engine behind."""
    tournament_id = await new_tournament(
        client, fee=0, late_reg_until_level=3, levels=[{"small_blind": 10, "big_blind": 20, "duration_s": 60}]
    )
    await register_players(client, ledger, tournament_id, 20)
    response = await client.post(f"/api/v1/tournaments/{tournament_id}/start", headers=DIRECTOR)
    assert response.status_code == 200, response.text
    live = live_service(client)
    url = f"/api/v1/tournaments/{tournament_id}"
    await register_players(client, ledger, tournament_id, 1)  # a late entry (seated before the first hand)
    clock_calls, idle_calls = 0, 0

    async def clock_after(seconds: int) -> None:
        """The background clock, ``seconds`` later. An idle tick (nothing due) is no fact: the row's
        version and the cached engine stay as they are."""
        nonlocal clock_calls, idle_calls
        cached = live.engines.peek(uuid.UUID(tournament_id))
        async with sessions() as session:
            await session.execute(
                text("UPDATE tournaments SET started_at = started_at - make_interval(secs => :s) WHERE id = :id"),
                {"id": uuid.UUID(tournament_id), "s": seconds},
            )
            await session.commit()
            row = await session.get(TournamentRow, uuid.UUID(tournament_id))
            assert row is not None
            before = row.version
            engine = await live.engine_of(session, row)
            assert engine is not None
            due = engine.next_clock_event_ms()
            idle = due is None or engines.now_ms(row, engine) < due
            await session.commit()
            await live.tick_clock(session)
            row = await session.get(TournamentRow, uuid.UUID(tournament_id), populate_existing=True)
            assert row is not None
        clock_calls += 1
        if idle:
            idle_calls += 1
            assert row.version == before, "an idle tick is not journaled"
            kept = live.engines.peek(uuid.UUID(tournament_id))
            assert kept is not None
            assert cached is None or kept.engine is cached.engine, "nor does it touch the cached engine"

    for command in ("pause", "resume"):
        response = await client.post(f"{url}/{command}", headers=DIRECTOR)
        assert response.status_code == 200, response.text
        if command == "pause":
            await clock_after(100)  # paused: nothing can fall due, however long
            assert idle_calls == 1
            assert_live_is_replayed(live, tournament_id, await replayed(settings, sessions, tournament_id))
    assert_live_is_replayed(live, tournament_id, await replayed(settings, sessions, tournament_id))

    async def after_hand(hands: int) -> None:
        if hands % 10 == 0:
            await clock_after(40)  # levels change (late registration closes at level 4)
        elif hands % 10 == 5:
            await clock_after(2)  # mostly idle: the level has time left
        if hands == 15:
            live.engines.clear()  # a restart: the next fact loads snapshot + journal
            return
        if hands == 20:
            # A refused fact (chips appear from nowhere): 409, and the engine it touched is not kept.
            [table, *_] = ints((await client.get(f"{url}/tables")).json())
            stacks = {str(s["entry"]): s["stack"] + 1 for s in table["seats"] if s is not None}
            body = {"hand_id": "bad", "table": table["table"], "stacks": stacks}
            headers = {"Authorization": f"Bearer {SERVICE.token('event')}"}
            response = await client.post(
                f"/internal/v1/tournaments/{tournament_id}/hands", json=wire(body), headers=headers
            )
            assert response.status_code == 409, response.text
            assert live.engines.peek(uuid.UUID(tournament_id)) is None
            return
        assert_live_is_replayed(live, tournament_id, await replayed(settings, sessions, tournament_id))

    hands = await drive(client, tournament_id, random.Random(3), over_http(client, tournament_id), after_hand)
    assert hands > 30
    lobby = ints((await client.get(url)).json())
    assert (lobby["status"], lobby["entries"]) == ("finished", 21)
    assert lobby["clock"]["level"] > 2, "the clock moved the levels on"
    async with sessions() as session:
        row = await session.get(TournamentRow, uuid.UUID(tournament_id))
        assert row is not None
        assert row.state_version == row.version, "a finished tournament is snapshotted"
        kinds = set((await session.scalars(select(Fact.kind).where(Fact.tournament_id == row.id))).all())
    assert {"entry", "pause", "resume", "hand", "tick"} <= kinds
    assert idle_calls > 1, "idle periods were part of the run"
    assert clock_calls > idle_calls, "and ticks that changed the level"
    standings = ints((await client.get(f"{url}/standings")).json())
    assert sorted(row["place"] for row in standings) == list(range(1, 22))
    assert sum(row["prize"] for row in standings) == 21_000


async def test_two_processes_alternating_hand_reports_stay_correct(
    client: AsyncTestClient,
    ledger: Ledger,
    settings: EventSettings,
    sessions: SessionFactory,
    other_process: Tournaments,
) -> None:
    """Two event services on one database take turns: each finds the other's facts by the row's version
    under its lock and replays them onto its own live engine; the tournament plays out exactly."""
    tournament_id = await new_tournament(client, fee=0)
    players = await register_players(client, ledger, tournament_id, 14)
    response = await client.post(f"/api/v1/tournaments/{tournament_id}/start", headers=DIRECTOR)
    assert response.status_code == 200, response.text
    via_http = over_http(client, tournament_id)
    via_other = by_service(other_process, sessions, tournament_id)
    first_engine: list[object] = []

    async def report(hand: int, body: dict[str, Any]) -> dict[str, Any]:
        if hand % 2 == 0:
            return await via_http(hand, body)
        answer = await via_other(hand, body)
        kept = other_process.engines.peek(uuid.UUID(tournament_id))
        if kept is None:
            assert any(i["kind"] == "tournament_finished" for i in answer["instructions"]), "only one that is over"
        else:
            first_engine.append(kept.engine)
        return answer

    hands = await drive(client, tournament_id, random.Random(11), report)
    assert hands > 20
    # The other process brought the same engine forward each time (never a reload from the snapshot).
    assert all(engine is first_engine[0] for engine in first_engine)
    expected = await replayed(settings, sessions, tournament_id)
    for tournaments in (live_service(client), other_process):
        async with sessions() as session:
            row = await session.get(TournamentRow, uuid.UUID(tournament_id))
            assert row is not None
            await tournaments.engine_of(session, row)  # a read brings a stale one up to date
        assert_live_is_replayed(tournaments, tournament_id, expected)
    standings = ints((await client.get(f"/api/v1/tournaments/{tournament_id}/standings")).json())
    assert sorted(row["place"] for row in standings) == list(range(1, 15))
    prizes = {row["player"]: row["prize"] for row in standings}
    for player, account in players.items():
        assert await ledger.available(account) == 5_000 - 1_000 + prizes[player]
    pool = await ledger.account(f"tournament:{tournament_id}", "prize_pool")
    assert await ledger.available(pool) == 0


# ---------------------------------------------------------------------------- starts cut short


class WalletDies(httpx.AsyncBaseTransport):
    """The network to the wallet fails during a start: requests posting the first ``posts`` holds are
    answered, the next one reaches the wallet (which posts its holds) but its answer is lost, and from
    then on nothing gets through — to the event service, a process that died after ``posts`` posts."""

    def __init__(self, posts: int) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.left = posts
        self.dead = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.dead:
            raise httpx.ConnectError("the wallet is unreachable", request=request)
        posts = 0
        if request.url.path.endswith("/post"):
            posts = 1
        elif request.url.path.endswith("/transfers/resolutions"):
            posts = len(json.loads(request.content)["resolutions"])
        response = await self.inner.handle_async_request(request)
        if posts:
            if self.left < posts:
                self.dead = True
                await response.aclose()
                raise httpx.ReadError("the answer was lost", request=request)
            self.left -= posts
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


async def start_cut_short(
    client: AsyncTestClient,
    ledger: Ledger,
    settings: EventSettings,
    sessions: SessionFactory,
    players: int,
) -> tuple[str, dict[str, str]]:
    """A tournament whose start died after 6 posts (chunks of 4: one chunk committed, one not)."""
    tournament_id = await new_tournament(client)
    accounts = await register_players(client, ledger, tournament_id, players)
    dying = Tournaments(
        settings, Wallet(settings.wallet_url, ServiceTokens.from_settings(settings), transport=WalletDies(posts=6))
    )
    async with sessions() as session:
        with pytest.raises(httpx.TransportError):
            await dying.start(session, uuid.UUID(tournament_id))
    await dying.wallet.aclose()
    async with sessions() as session:
        row = await session.get(TournamentRow, uuid.UUID(tournament_id))
        assert row is not None
        assert (row.status, row.started_at) == ("starting", None)
        statuses = (
            await session.scalars(select(Registration.status).where(Registration.tournament_id == row.id))
        ).all()
    assert sorted(statuses).count("posted") == 4, "the first chunk was posted and committed"
    pool = await ledger.account(f"tournament:{tournament_id}", "prize_pool")
    assert await ledger.available(pool) >= 4 * 1_000, "the wallet got further than the database knows"
    return tournament_id, accounts


async def assert_started_once(
    client: AsyncTestClient,
    ledger: Ledger,
    sessions: SessionFactory,
    tournament_id: str,
    accounts: dict[str, str],
    fees_before: int,
) -> None:
    count = len(accounts)
    lobby = ints((await client.get(f"/api/v1/tournaments/{tournament_id}")).json())
    assert (lobby["status"], lobby["entries"], lobby["prize_pool"]) == ("running", count, count * 1_000)
    pool = await ledger.account(f"tournament:{tournament_id}", "prize_pool")
    assert await ledger.available(pool) == count * 1_000, "the pool holds the buy-ins, each once"
    fees = await ledger.account("house", "house_fees")
    assert await ledger.available(fees) - fees_before == count * 100, "each fee once"
    for account in accounts.values():
        assert await ledger.available(account) == 5_000 - 1_100, "each entry posted exactly once"
    async with sessions() as session:
        regs = (
            await session.scalars(select(Registration).where(Registration.tournament_id == uuid.UUID(tournament_id)))
        ).all()
        started = await session.scalar(
            text("SELECT count(*) FROM outbox WHERE subject = :id AND type = 'event.tournament_started'"),
            {"id": tournament_id},
        )
    assert {r.status for r in regs} == {"posted"}
    assert sorted(r.entry_id for r in regs) == list(range(1, count + 1))
    assert started == 1, "the engine was built once: one event.tournament_started"
    seated = [
        s for t in ints((await client.get(f"/api/v1/tournaments/{tournament_id}/tables")).json()) for s in t["seats"]
    ]
    assert sorted(s["entry"] for s in seated if s is not None) == list(range(1, count + 1))
    response = await client.post(f"/api/v1/tournaments/{tournament_id}/start", headers=DIRECTOR)
    assert response.status_code == 409, "started already"


async def test_a_start_cut_short_is_finished_by_a_retry(
    client: AsyncTestClient,
    ledger: Ledger,
    settings: EventSettings,
    sessions: SessionFactory,
) -> None:
    fees_before = await ledger.available(await ledger.account("house", "house_fees"))
    tournament_id, accounts = await start_cut_short(client, ledger, settings, sessions, 13)
    response = await client.post(f"/api/v1/tournaments/{tournament_id}/start", headers=DIRECTOR)
    assert response.status_code == 200, response.text
    await assert_started_once(client, ledger, sessions, tournament_id, accounts, fees_before)


async def test_a_start_cut_short_is_finished_by_the_reconciler(
    client: AsyncTestClient,
    ledger: Ledger,
    settings: EventSettings,
    sessions: SessionFactory,
) -> None:
    fees_before = await ledger.available(await ledger.account("house", "house_fees"))
    tournament_id, accounts = await start_cut_short(client, ledger, settings, sessions, 10)
    reconciler = Tournaments(
        msgspec.structs.replace(settings, late_entry_grace_s=0.0),
        Wallet(settings.wallet_url, ServiceTokens.from_settings(settings)),
    )
    async with sessions() as session:
        await reconciler.reconcile(session)
        await session.commit()
    await reconciler.wallet.aclose()
    await assert_started_once(client, ledger, sessions, tournament_id, accounts, fees_before)


async def test_two_starts_at_once_build_one_engine(
    client: AsyncTestClient,
    ledger: Ledger,
    settings: EventSettings,
    sessions: SessionFactory,
    other_process: Tournaments,
) -> None:
    """A director's double click on two instances (or a retry racing the reconciler): both post the same
    entries (replays), one builds the engine, the other finds it running."""
    fees_before = await ledger.available(await ledger.account("house", "house_fees"))
    tournament_id = await new_tournament(client)
    accounts = await register_players(client, ledger, tournament_id, 9)

    async def start(tournaments: Tournaments) -> str:
        async with sessions() as session:
            row = await tournaments.start(session, uuid.UUID(tournament_id))
            await session.commit()
            return row.status

    # (The app's own service runs on the test client's event loop: a third one stands in for it.)
    one_more = Tournaments(settings, Wallet(settings.wallet_url, ServiceTokens.from_settings(settings)))
    statuses = await asyncio.gather(start(one_more), start(other_process))
    await one_more.wallet.aclose()
    assert statuses == ["running", "running"]
    await assert_started_once(client, ledger, sessions, tournament_id, accounts, fees_before)
    async with sessions() as session:
        facts = await session.scalar(
            select(func.count()).select_from(Fact).where(Fact.tournament_id == uuid.UUID(tournament_id))
        )
    assert facts == 0, "a start is a snapshot, not a fact"


# ---------------------------------------------------------------------------- housekeeping and rules version


def by_service(tournaments: Tournaments, sessions: SessionFactory, tournament_id: str) -> Report:
    async def report(_: int, body: dict[str, Any]) -> dict[str, Any]:
        async with sessions() as session:
            answer = await tournaments.hand_finished(
                session,
                uuid.UUID(tournament_id),
                hand_id=body["hand_id"],
                table=body["table"],
                stacks={int(e): s for e, s in body["stacks"].items()},
                knockouts={},
            )
            await session.commit()
        return answer

    return report


async def test_the_journal_before_the_kept_snapshots_is_pruned_and_replay_stays_exact(
    client: AsyncTestClient, ledger: Ledger, settings: EventSettings, sessions: SessionFactory
) -> None:
    """keep_snapshots=2: after every hand the journal starts right after the third-newest snapshot
    (so the latest two snapshots' facts are kept for audit), and snapshot + journal still replays to
    the live engine exactly."""
    pruning = Tournaments(
        msgspec.structs.replace(settings, keep_snapshots=2),
        Wallet(settings.wallet_url, ServiceTokens.from_settings(settings)),
    )
    tournament_id = await new_tournament(client, fee=0)
    await register_players(client, ledger, tournament_id, 12)
    response = await client.post(f"/api/v1/tournaments/{tournament_id}/start", headers=DIRECTOR)
    assert response.status_code == 200, response.text
    tid = uuid.UUID(tournament_id)
    pruned: list[int] = []

    async def after_hand(_: int) -> None:
        async with sessions() as session:
            snapshots = (
                await session.scalars(
                    select(Snapshot.version).where(Snapshot.tournament_id == tid).order_by(Snapshot.version.desc())
                )
            ).all()
            first_fact = await session.scalar(select(func.min(Fact.seq)).where(Fact.tournament_id == tid))
            row = await session.get(TournamentRow, tid)
            assert row is not None
        assert 1 <= len(snapshots) <= 2
        assert snapshots[0] == row.state_version, "the latest snapshot is kept"
        if first_fact is not None and first_fact > 1:
            pruned.append(first_fact)
            # Nothing after the older of the two kept snapshots was deleted.
            assert first_fact <= snapshots[-1] + 1
        assert_live_is_replayed(pruning, tournament_id, await replayed(settings, sessions, tournament_id))

    hands = await drive(
        client, tournament_id, random.Random(5), by_service(pruning, sessions, tournament_id), after_hand
    )
    await pruning.wallet.aclose()
    assert hands > 3 * SNAPSHOT_EVERY
    assert pruned, "the journal was pruned"
    standings = ints((await client.get(f"/api/v1/tournaments/{tournament_id}/standings")).json())
    assert sorted(row["place"] for row in standings) == list(range(1, 13))


def test_the_live_engine_cache_is_bounded_and_drops_tournaments_that_are_over() -> None:
    async def run() -> None:
        engines = LiveEngines(max_engines=2)
        ids = [uuid.uuid4() for _ in range(3)]
        for tid in ids:
            await engines.checkout(tid)
            engines.checkin(tid, Live(1, Tournament(TournamentConfig())))
        assert len(engines) == 2
        assert engines.peek(ids[0]) is None, "the least recently used is dropped"
        await engines.checkout(ids[1])  # used again: now the most recent
        engines.checkin(ids[1], Live(2, Tournament(TournamentConfig())))
        await engines.checkout(ids[0])
        engines.checkin(ids[0], Live(1, Tournament(TournamentConfig())))
        assert engines.peek(ids[2]) is None
        assert engines.peek(ids[1]) is not None
        over = Tournament(TournamentConfig())
        over.status = "finished"
        await engines.checkout(ids[1])
        engines.checkin(ids[1], Live(3, over))
        assert engines.peek(ids[1]) is None, "a finished tournament is not kept"
        assert len(engines) == 1

    asyncio.run(run())


async def test_a_journal_of_other_rules_is_not_replayed_until_snapshotted(
    client: AsyncTestClient,
    ledger: Ledger,
    settings: EventSettings,
    sessions: SessionFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Facts journaled under rules version N are refused (a clear 503 problem, logged) by an engine of
    rules N+1; ``tablium-event snapshot`` run with the engine of rules N first makes the deploy safe:
    the new engine starts from that snapshot, with no fact of the old rules to replay."""
    tournament_id = await new_tournament(client, fee=0)
    await register_players(client, ledger, tournament_id, 8)
    url = f"/api/v1/tournaments/{tournament_id}"
    response = await client.post(f"{url}/start", headers=DIRECTOR)
    assert response.status_code == 200, response.text
    live = live_service(client)
    for command in ("pause", "resume"):  # facts after the start's snapshot, journaled under the current rules
        response = await client.post(f"{url}/{command}", headers=DIRECTOR)
        assert response.status_code == 200, response.text
    old_rules = journal_module.RULES_VERSION

    def deploy(rules: int) -> None:
        live.engines.clear()  # a new process
        monkeypatch.setattr(journal_module, "RULES_VERSION", rules)
        monkeypatch.setattr(engine_module, "RULES_VERSION", rules)

    deploy(old_rules + 1)
    response = await client.get(url)
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    detail = response.json()["detail"]
    assert f"rules version {old_rules}" in detail
    assert "tablium-event snapshot" in detail
    response = await client.post(f"{url}/pause", headers=DIRECTOR)
    assert response.status_code == 503, "no fact is applied either"

    # The pre-deploy step, with the engine that wrote the journal: the CLI command.
    deploy(old_rules)
    env = {**os.environ, "TABLIUM_EVENT_DATABASE_URL": settings.database_url, "TABLIUM_ENVIRONMENT": "test"}
    done = subprocess.run(  # noqa: ASYNC221 - a short command run once
        [str(Path(sys.executable).parent / "tablium-event"), "snapshot"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert f"{tournament_id} snapshot at version" in done.stdout
    async with sessions() as session:
        row = await session.get(TournamentRow, uuid.UUID(tournament_id))
        assert row is not None
        assert row.state_version == row.version
        state = await session.scalar(select(TournamentRow.state).where(TournamentRow.id == row.id))
        assert state is not None
        assert state["rules_version"] == old_rules

    deploy(old_rules + 1)
    response = await client.get(url)
    assert response.status_code == 200, response.text
    response = await client.post(f"{url}/pause", headers=DIRECTOR)
    assert response.status_code == 200, response.text
    async with sessions() as session:
        newest = await session.scalar(
            select(Fact).where(Fact.tournament_id == uuid.UUID(tournament_id)).order_by(Fact.seq.desc()).limit(1)
        )
    assert newest is not None
    assert (newest.kind, newest.rules_version) == ("pause", old_rules + 1)
