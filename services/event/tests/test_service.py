"""The event service against the REAL wallet (a separate process with its own database).

Every unit of money is accounted for: registration holds, voids on unregister, buy-ins posted into the
pool at the start with fees to the house, prizes paid from the pool exactly once, refunds on cancel.
The lobby's part is played by the simulator's table runner over the internal hands endpoint.
"""

from __future__ import annotations

import asyncio
import importlib.util
import random
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aio_pika
import httpx
import msgspec
import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from tablium_event.amounts import MONEY_AND_CHIPS, to_wire
from tablium_event.app import create_app
from tablium_event.clients.wallet import Wallet, transfer_id
from tablium_event.db.models import Prize, Purchase, Registration
from tablium_event.domain.instructions import (
    BreakTable,
    EliminatePlayer,
    HoldTable,
    Instruction,
    MovePlayer,
    ResumeTable,
    SeatPlayer,
)
from tablium_event.domain.simulator import TableRunner, play_hand
from tablium_event.services.tournaments import Tournaments
from tablium_event.settings import EventSettings

from tablium_kit import db
from tablium_kit.auth import ServiceTokens, StaticKeySource
from tablium_kit.messaging.envelope import CONTENT_TYPE, decode
from tablium_kit.messaging.testing import AmqpNames
from tablium_kit.service_processes import WalletLedger, start_service, wallet_env
from tablium_kit.testing_tokens import AccessTokenIssuer

SessionFactory = async_sessionmaker[AsyncSession]

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("tablium_wallet") is None,
    reason="the wallet service (tablium_wallet) is not installed: these tests need the real wallet",
)

VENV_BIN = Path(__file__).resolve().parents[3] / ".venv" / "bin"
KID = "event-test-key"
ISSUER = AccessTokenIssuer(KID)
SIGNING_KEY = ISSUER.key
# The lobby, which reports hands (development keys: the services trust them in tests).
SERVICE = ServiceTokens.development("lobby")


def bearer(subject: str, roles: list[str]) -> dict[str, str]:
    return ISSUER.bearer(subject, roles)


DIRECTOR = bearer(str(uuid.uuid4()), ["player", "tournament_director"])


def wire(body: Any) -> Any:
    """A request body with its money and chips (a hand report's ``stacks`` too) as decimal strings."""
    body = to_wire(body)
    if isinstance(body, dict) and isinstance(body.get("stacks"), dict):
        body["stacks"] = {entry: to_wire({"stack": stack})["stack"] for entry, stack in body["stacks"].items()}
    return body


def _int(value: Any) -> Any:
    if isinstance(value, list):
        return [_int(item) for item in value]
    assert not isinstance(value, int) or isinstance(value, bool), f"{value} travelled as a JSON number"
    return int(value) if isinstance(value, str) and value.lstrip("-").isdigit() else value


def ints(body: Any) -> Any:
    """A response with its money and chips back as ints, for arithmetic; a JSON number there fails."""
    if isinstance(body, dict):
        return {key: _int(item) if key in MONEY_AND_CHIPS else ints(item) for key, item in body.items()}
    if isinstance(body, list):
        return [ints(item) for item in body]
    return body


@pytest.fixture(scope="module")
async def wallet_url(make_database: Callable[[str], Awaitable[str]], amqp_names: AmqpNames) -> AsyncIterator[str]:
    wallet = start_service("wallet", wallet_env(await make_database("wallet"), amqp_names.exchange))
    yield wallet.url
    wallet.stop()


def event_settings(database_url: str, amqp_names: AmqpNames, wallet_url: str, **overrides: str) -> EventSettings:
    """Test settings: this run's database, exchange and wallet; ``overrides`` as TABLIUM_EVENT_<NAME>."""
    return EventSettings.from_env(
        "event",
        {
            "TABLIUM_EVENT_DATABASE_URL": database_url,
            "TABLIUM_EVENTS_EXCHANGE": amqp_names.exchange,
            "TABLIUM_ENVIRONMENT": "test",
            "TABLIUM_EVENT_WALLET_URL": wallet_url,
            # Tests drive the clock and the reconciler themselves.
            "TABLIUM_EVENT_CLOCK_INTERVAL_S": "0",
            "TABLIUM_EVENT_RECONCILE_INTERVAL_S": "0",
            # The handler is called directly (test_a_hold_voided_by_the_wallet_...); no queue on the shared broker.
            "TABLIUM_EVENT_CONSUME_EVENTS": "false",
            **{f"TABLIUM_EVENT_{name.upper()}": value for name, value in overrides.items()},
        },
    )


@pytest.fixture(scope="module")
async def settings(
    make_database: Callable[[str], Awaitable[str]], amqp_names: AmqpNames, wallet_url: str
) -> EventSettings:
    return event_settings(await make_database("event"), amqp_names, wallet_url)


@pytest.fixture(scope="module")
async def client(settings: EventSettings) -> AsyncIterator[AsyncTestClient]:
    app = create_app(settings, key_source=StaticKeySource({KID: SIGNING_KEY.public_key()}))
    async with AsyncTestClient(app=app) as test_client:
        yield test_client


class Ledger(WalletLedger):
    """The wallet's internal API as the event service calls it: fund players, read balances."""

    def __init__(self, url: str) -> None:
        super().__init__(url, "event")


@pytest.fixture
async def sessions(settings: EventSettings) -> AsyncIterator[SessionFactory]:
    """Sessions on the event service's database, for tests that set up or inspect rows directly."""
    engine = db.create_engine(settings.database_url)
    yield db.session_factory(engine)
    await engine.dispose()


@pytest.fixture
async def ledger(wallet_url: str) -> AsyncIterator[Ledger]:
    ledger = Ledger(wallet_url)
    yield ledger
    await ledger.aclose()


async def new_tournament(client: AsyncTestClient, **config: Any) -> str:
    body = {"name": "Sunday test", "buy_in": 1_000, "fee": 100, "seats_per_table": 6, "seed": 42, **config}
    response = await client.post("/api/v1/tournaments", json=wire(body), headers=DIRECTOR)
    assert response.status_code == 201, response.text
    tournament_id: str = response.json()["id"]
    response = await client.post(f"/api/v1/tournaments/{tournament_id}/open", headers=DIRECTOR)
    assert response.status_code == 200, response.text
    return tournament_id


async def register_players(
    client: AsyncTestClient, ledger: Ledger, tournament_id: str, count: int, funds: int = 5_000
) -> dict[str, str]:
    """player id -> wallet account id"""
    players: dict[str, str] = {}
    for _ in range(count):
        player = str(uuid.uuid4())
        players[player] = await ledger.fund(player, funds)
        response = await client.post(
            f"/api/v1/tournaments/{tournament_id}/registrations", headers=bearer(player, ["player"])
        )
        assert response.status_code == 201, response.text
        assert response.json()["status"] in ("held", "posted")
    return players


def instructions_of(body: dict[str, Any]) -> list[Instruction]:
    kinds = {
        "seat_player": SeatPlayer,
        "move_player": MovePlayer,
        "eliminate_player": EliminatePlayer,
        "hold_table": HoldTable,
        "resume_table": ResumeTable,
        "break_table": BreakTable,
    }
    result: list[Instruction] = []
    for raw in body["instructions"]:
        kind = kinds.get(raw["kind"])
        if kind is not None:
            result.append(kind(**{k: v for k, v in raw.items() if k != "kind"}))
    return result


async def play_to_the_end(client: AsyncTestClient, tournament_id: str, seed: int = 1) -> int:
    """The lobby's part: deal at tables, report hands, follow the instructions."""
    rng = random.Random(seed)
    runner = TableRunner()
    tables = ints((await client.get(f"/api/v1/tournaments/{tournament_id}/tables")).json())
    stacks: dict[int, int] = {}
    for table in tables:
        for seat, occupant in enumerate(table["seats"]):
            if occupant is not None:
                runner.apply(
                    [SeatPlayer(occupant["entry"], occupant["player"], table["table"], seat, occupant["stack"], "")]
                )
                stacks[occupant["entry"]] = occupant["stack"]
        runner.start_dealing(table["table"])
    headers = {"Authorization": f"Bearer {SERVICE.token('event')}"}
    hands = 0
    while True:
        status = (await client.get(f"/api/v1/tournaments/{tournament_id}")).json()["status"]
        if status != "running":
            return hands
        table = runner.dealing[rng.randrange(len(runner.dealing))]
        players = list(runner.seated[table].values())
        after = play_hand(rng, players, stacks, (0.3, 0.6, 0.1))
        runner.stop_dealing(table)
        body = {"hand_id": f"h{hands}", "table": table, "stacks": {str(e): s for e, s in after.items()}}
        response = await client.post(
            f"/internal/v1/tournaments/{tournament_id}/hands", json=wire(body), headers=headers
        )
        assert response.status_code == 200, response.text
        if hands == 0:
            replay = await client.post(
                f"/internal/v1/tournaments/{tournament_id}/hands", json=wire(body), headers=headers
            )
            assert replay.json() == response.json(), "a repeated hand report is answered, not applied again"
        stacks.update(after)
        runner.apply(instructions_of(ints(response.json())))
        if table not in runner.held and table in runner.seated:
            runner.start_dealing(table)
        assert runner.moves_mid_hand == 0
        hands += 1


async def test_a_whole_tournament_moves_every_unit_exactly_once(
    client: AsyncTestClient, ledger: Ledger, settings: EventSettings, sessions: SessionFactory
) -> None:
    fees = await ledger.account("house", "house_fees")
    fees_before = await ledger.available(fees)
    tournament_id = await new_tournament(client)
    players = await register_players(client, ledger, tournament_id, 13)
    # One unregisters: the hold is voided and the money is free again.
    leaver = next(iter(players))
    response = await client.delete(
        f"/api/v1/tournaments/{tournament_id}/registrations/me", headers=bearer(leaver, ["player"])
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "voided"
    assert await ledger.available(players.pop(leaver)) == 5_000
    for account in players.values():
        assert await ledger.available(account) == 5_000 - 1_100, "buy-in and fee are held"
    # Someone who cannot pay is refused and nothing is held.
    poor = str(uuid.uuid4())
    poor_account = await ledger.fund(poor, 500)
    response = await client.post(f"/api/v1/tournaments/{tournament_id}/registrations", headers=bearer(poor, ["player"]))
    assert response.status_code == 409, response.text
    assert await ledger.available(poor_account) == 500

    response = await client.post(f"/api/v1/tournaments/{tournament_id}/start", headers=DIRECTOR)
    assert response.status_code == 200, response.text
    lobby = ints(response.json())
    assert (lobby["status"], lobby["entries"], lobby["prize_pool"]) == ("running", 12, 12_000)
    pool = await ledger.account(f"tournament:{tournament_id}", "prize_pool")
    assert await ledger.available(pool) == 12_000
    assert await ledger.available(fees) - fees_before == 1_200
    # Deal offers for the director: chip chop for any field, ICM for at most 12 players.
    response = await client.get(f"/api/v1/tournaments/{tournament_id}/deal?method=chip-chop", headers=DIRECTOR)
    assert response.status_code == 200, response.text
    assert sum(row["amount"] for row in ints(response.json())) == 12_000
    response = await client.get(f"/api/v1/tournaments/{tournament_id}/deal?method=icm", headers=DIRECTOR)
    assert response.status_code == 200, response.text
    assert sum(row["amount"] for row in ints(response.json())) == 12_000
    response = await client.get(f"/api/v1/tournaments/{tournament_id}/deal?method=dice", headers=DIRECTOR)
    assert response.status_code == 400, response.text

    await play_to_the_end(client, tournament_id)
    lobby = ints((await client.get(f"/api/v1/tournaments/{tournament_id}")).json())
    assert lobby["status"] == "finished"
    standings = ints((await client.get(f"/api/v1/tournaments/{tournament_id}/standings")).json())
    prizes = {row["player"]: row["prize"] for row in standings}
    assert sorted(row["place"] for row in standings) == list(range(1, 13))
    assert sum(prizes.values()) == 12_000
    for player, account in players.items():
        assert await ledger.available(account) == 5_000 - 1_100 + prizes[player]
    assert await ledger.available(pool) == 0, "the pool is paid out exactly"
    assert await ledger.available(fees) - fees_before == 1_200

    # Paying again (a retry, the reconciler) moves nothing.
    retry = Tournaments(settings, Wallet(settings.wallet_url, ServiceTokens.from_settings(settings)))
    async with sessions() as session:
        await session.execute(update(Prize).values(status="owed"))  # as if every payment's answer was lost
        await session.commit()
        await retry.pay_prizes(session, uuid.UUID(tournament_id))
        await retry.reconcile(session)
        await session.commit()
        types = set((await session.scalars(text("SELECT DISTINCT type FROM outbox"))).all())
    await retry.wallet.aclose()
    for player, account in players.items():
        assert await ledger.available(account) == 5_000 - 1_100 + prizes[player]
    assert await ledger.available(pool) == 0
    assert {
        "event.tournament_created",
        "event.tournament_started",
        "event.player_eliminated",
        "event.prize_awarded",
        "event.tournament_finished",
        "event.player_moved",
        "event.table_instructions",
    } <= types


async def test_cancel_after_the_start_refunds_every_unit(client: AsyncTestClient, ledger: Ledger) -> None:
    fees = await ledger.account("house", "house_fees")
    fees_before = await ledger.available(fees)
    tournament_id = await new_tournament(client, guarantee=50_000)
    players = await register_players(client, ledger, tournament_id, 7)
    response = await client.post(f"/api/v1/tournaments/{tournament_id}/start", headers=DIRECTOR)
    assert response.status_code == 200, response.text
    response = await client.post(f"/api/v1/tournaments/{tournament_id}/cancel", headers=DIRECTOR)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "cancelled"
    for account in players.values():
        assert await ledger.available(account) == 5_000
    pool = await ledger.account(f"tournament:{tournament_id}", "prize_pool")
    assert await ledger.available(pool) == 0
    assert await ledger.available(fees) == fees_before


async def test_cancel_before_the_start_voids_every_hold(client: AsyncTestClient, ledger: Ledger) -> None:
    tournament_id = await new_tournament(client)
    players = await register_players(client, ledger, tournament_id, 3)
    response = await client.post(f"/api/v1/tournaments/{tournament_id}/cancel", headers=DIRECTOR)
    assert response.status_code == 200, response.text
    for account in players.values():
        assert await ledger.available(account) == 5_000


async def test_only_directors_direct_and_only_services_report_hands(client: AsyncTestClient) -> None:
    player = bearer(str(uuid.uuid4()), ["player"])
    response = await client.post("/api/v1/tournaments", json={"name": "x"}, headers=player)
    assert response.status_code == 403
    response = await client.post("/api/v1/tournaments", json={"name": "x"})
    assert response.status_code == 401
    response = await client.post(
        f"/internal/v1/tournaments/{uuid.uuid4()}/hands",
        json=wire({"hand_id": "1", "table": 1, "stacks": {}}),
        headers=player,
    )
    assert response.status_code == 401
    response = await client.post("/api/v1/tournaments", json={"name": "x", "typo": 1}, headers=DIRECTOR)
    assert response.status_code == 400 or response.status_code == 422


async def test_edit_before_start_only(client: AsyncTestClient, ledger: Ledger) -> None:
    tournament_id = await new_tournament(client)
    response = await client.patch(
        f"/api/v1/tournaments/{tournament_id}",
        json=wire(
            {"name": "Renamed", "config": {"name": "Renamed", "buy_in": 1_000, "fee": 100, "seats_per_table": 9}}
        ),
        headers=DIRECTOR,
    )
    assert response.status_code == 200, response.text
    assert response.json()["config"]["seats_per_table"] == 9
    await register_players(client, ledger, tournament_id, 2)
    response = await client.post(f"/api/v1/tournaments/{tournament_id}/start", headers=DIRECTOR)
    assert response.status_code == 200, response.text
    response = await client.patch(f"/api/v1/tournaments/{tournament_id}", json={"name": "Late"}, headers=DIRECTOR)
    assert response.status_code == 409


async def test_an_edit_to_a_sit_and_go_with_fewer_seats_than_registrations_is_refused(
    client: AsyncTestClient, ledger: Ledger
) -> None:
    tournament_id = await new_tournament(client)
    players = await register_players(client, ledger, tournament_id, 3)
    config = {"name": "SNG", "buy_in": 1_000, "fee": 100, "format": "sng", "seats_per_table": 2}
    url = f"/api/v1/tournaments/{tournament_id}"
    response = await client.patch(url, json=wire({"config": config}), headers=DIRECTOR)
    assert response.status_code == 409, response.text
    response = await client.patch(url, json=wire({"config": {**config, "seats_per_table": 4}}), headers=DIRECTOR)
    assert response.status_code == 200, response.text
    response = await client.post(f"{url}/cancel", headers=DIRECTOR)
    assert response.status_code == 200, response.text
    for account in players.values():
        assert await ledger.available(account) == 5_000


async def test_a_half_done_registration_is_finished_by_the_reconciler(
    client: AsyncTestClient, ledger: Ledger, settings: EventSettings, sessions: SessionFactory
) -> None:
    """The row is written before the wallet is called: a crash in between leaves 'holding', never an orphan hold."""
    tournament_id = uuid.UUID(await new_tournament(client))
    player = uuid.uuid4()
    account = await ledger.fund(str(player), 5_000)
    async with sessions() as session:
        session.add(
            Registration(
                tournament_id=tournament_id,
                player_id=player,
                entry_no=1,
                status="holding",
                amount=1_100,
                hold_transfer_id=transfer_id(tournament_id, "hold", player, 1),
            )
        )
        await session.commit()
    assert await ledger.available(account) == 5_000
    # The reconciler of another instance (this test's event loop) finishes it.
    reconciler = Tournaments(settings, Wallet(settings.wallet_url, ServiceTokens.from_settings(settings)))
    async with sessions() as session:
        await reconciler.reconcile(session)
        await session.commit()
        status = await session.scalar(
            select(Registration.status).where(
                Registration.player_id == player, Registration.tournament_id == tournament_id
            )
        )
    await reconciler.wallet.aclose()
    assert status == "held"
    assert await ledger.available(account) == 3_900
    # Unregistering releases it like any other.
    response = await client.delete(
        f"/api/v1/tournaments/{tournament_id}/registrations/me", headers=bearer(str(player), ["player"])
    )
    assert response.status_code == 200, response.text
    assert await ledger.available(account) == 5_000


async def test_late_registration_reentry_pause_and_undo(client: AsyncTestClient, ledger: Ledger) -> None:
    tournament_id = await new_tournament(
        client,
        fee=0,
        late_reg_until_level=2,
        max_reentries=1,
        levels=[{"small_blind": 10, "big_blind": 20, "duration_s": 3600}],
    )
    players = await register_players(client, ledger, tournament_id, 4)
    response = await client.post(f"/api/v1/tournaments/{tournament_id}/start", headers=DIRECTOR)
    assert response.status_code == 200, response.text
    # A late entry: held, then posted at once and seated.
    late = await register_players(client, ledger, tournament_id, 1)
    lobby = ints((await client.get(f"/api/v1/tournaments/{tournament_id}")).json())
    assert (lobby["entries"], lobby["prize_pool"], lobby["players_left"]) == (5, 5_000, 5)
    pool = await ledger.account(f"tournament:{tournament_id}", "prize_pool")
    assert await ledger.available(pool) == 5_000
    # Someone busts; the director undoes it, then it happens again and the player re-enters.
    [table] = ints((await client.get(f"/api/v1/tournaments/{tournament_id}/tables")).json())
    seated = [s for s in table["seats"] if s is not None]
    loser, winner = seated[0], seated[1]
    stacks = {str(s["entry"]): s["stack"] for s in seated}
    stacks[str(winner["entry"])] += stacks[str(loser["entry"])]
    stacks[str(loser["entry"])] = 0
    headers = {"Authorization": f"Bearer {SERVICE.token('event')}"}
    body = {"hand_id": "late-1", "table": table["table"], "stacks": stacks}
    response = await client.post(f"/internal/v1/tournaments/{tournament_id}/hands", json=wire(body), headers=headers)
    assert response.status_code == 200, response.text
    undo_url = f"/api/v1/tournaments/{tournament_id}/undo"
    response = await client.post(undo_url, json=wire({"what": "bust", "stack": 100}), headers=DIRECTOR)
    assert response.status_code == 409, "chips are never created: they must come back from a player"
    assert response.headers["content-type"].startswith("application/problem+json")
    response = await client.post(
        undo_url, json=wire({"what": "bust", "stack": 100, "from_entry": winner["entry"]}), headers=DIRECTOR
    )
    assert response.status_code == 200, response.text
    # The table is dealing: the correction happens when it reports that hand.
    [table] = ints((await client.get(f"/api/v1/tournaments/{tournament_id}/tables")).json())
    stacks = {str(s["entry"]): s["stack"] for s in table["seats"] if s is not None}
    body = {"hand_id": "late-2", "table": table["table"], "stacks": stacks}
    response = await client.post(f"/internal/v1/tournaments/{tournament_id}/hands", json=wire(body), headers=headers)
    assert response.status_code == 200, response.text
    kinds = {(i["kind"], i["entry"]): i for i in ints(response.json())["instructions"] if "entry" in i}
    assert kinds[("seat_player", loser["entry"])]["stack"] == 100
    assert kinds[("set_stack", winner["entry"])]["stack"] == stacks[str(winner["entry"])] - 100
    # The player busts again and re-enters.
    [table] = ints((await client.get(f"/api/v1/tournaments/{tournament_id}/tables")).json())
    stacks = {str(s["entry"]): s["stack"] for s in table["seats"] if s is not None}
    stacks[str(winner["entry"])] += stacks[str(loser["entry"])]
    stacks[str(loser["entry"])] = 0
    body = {"hand_id": "late-3", "table": table["table"], "stacks": stacks}
    response = await client.post(f"/internal/v1/tournaments/{tournament_id}/hands", json=wire(body), headers=headers)
    assert response.status_code == 200, response.text
    response = await client.post(
        f"/api/v1/tournaments/{tournament_id}/registrations", headers=bearer(loser["player"], ["player"])
    )
    assert response.status_code == 201, response.text
    assert response.json()["entry_no"] == 2
    lobby = ints((await client.get(f"/api/v1/tournaments/{tournament_id}")).json())
    assert (lobby["entries"], lobby["prize_pool"], lobby["players_left"]) == (6, 6_000, 5)
    all_players = {**players, **late}
    assert await ledger.available(all_players[loser["player"]]) == 5_000 - 2 * 1_000
    # Pause and resume.
    response = await client.post(f"/api/v1/tournaments/{tournament_id}/pause", headers=DIRECTOR)
    assert response.status_code == 200, response.text
    assert response.json()["clock"]["paused"] is True
    response = await client.post(f"/api/v1/tournaments/{tournament_id}/resume", headers=DIRECTOR)
    assert response.json()["clock"]["paused"] is False
    decisions = (await client.get(f"/api/v1/tournaments/{tournament_id}/decisions", headers=DIRECTOR)).json()
    assert any(row["kind"] == "pause" for row in decisions)
    assert all(row["reason"] for row in decisions)
    assert [row["data"][4] for row in decisions if row["kind"] == "undo-bust"] == ["100"], "chips as a string"


async def test_a_hold_voided_by_the_wallet_releases_the_registration(
    client: AsyncTestClient, ledger: Ledger, settings: EventSettings, sessions: SessionFactory
) -> None:
    from tablium_event.events.handlers import on_transfer_voided

    from tablium_kit.messaging.envelope import new_event

    tournament_id = await new_tournament(client)
    players = await register_players(client, ledger, tournament_id, 1)
    player = uuid.UUID(next(iter(players)))
    hold = transfer_id(uuid.UUID(tournament_id), "hold", player, 1)
    event = new_event(
        service="wallet",
        type="wallet.transfer_voided",
        subject=str(hold),
        data={"transfer_id": str(uuid.uuid4()), "pending_id": str(hold), "status": "expired"},
    )
    async with sessions() as session:
        await on_transfer_voided(session, event)
        await session.commit()
        status = await session.scalar(select(Registration.status).where(Registration.hold_transfer_id == hold))
    assert status == "voided"


async def test_pko_with_an_overlay_pays_out_the_whole_pool(client: AsyncTestClient, ledger: Ledger) -> None:
    """Buy-ins, bounties and the guarantee's overlay all leave the pool, to players, exactly once."""
    fees = await ledger.account("house", "house_fees")
    adjustments = await ledger.account("house", "house_adjustments")
    tournament_id = await new_tournament(client, bounty=200, guarantee=20_000)
    players = await register_players(client, ledger, tournament_id, 12)
    fees_before, adjustments_before = await ledger.available(fees), await ledger.available(adjustments)
    response = await client.post(f"/api/v1/tournaments/{tournament_id}/start", headers=DIRECTOR)
    assert response.status_code == 200, response.text
    assert ints(response.json())["prize_pool"] == 20_000, "the guarantee tops 12,000 of buy-ins up"
    await play_to_the_end(client, tournament_id, seed=5)
    pool = await ledger.account(f"tournament:{tournament_id}", "prize_pool")
    assert await ledger.available(pool) == 0
    won = sum([await ledger.available(account) - (5_000 - 1_300) for account in players.values()])
    assert won == 20_000 + 12 * 200, "every place prize and every bounty reached a player"
    assert await ledger.available(fees) - fees_before == 1_200
    assert adjustments_before - await ledger.available(adjustments) == 8_000, "the overlay, once"


async def test_levels_and_breaks_run_on_the_clock_and_are_published(
    client: AsyncTestClient, ledger: Ledger, settings: EventSettings, sessions: SessionFactory
) -> None:
    from tablium_event.db.models import TournamentRow

    tournament_id = await new_tournament(
        client,
        levels=[{"small_blind": 10, "big_blind": 20, "duration_s": 60}, {"small_blind": 20, "big_blind": 40}],
        breaks=[{"after_level": 1, "duration_s": 30}],
    )
    await register_players(client, ledger, tournament_id, 4)
    response = await client.post(f"/api/v1/tournaments/{tournament_id}/start", headers=DIRECTOR)
    assert response.status_code == 200, response.text
    clock = Tournaments(settings, Wallet(settings.wallet_url, ServiceTokens.from_settings(settings)))

    async def run_clock(seconds_since_start: int) -> None:
        """The background clock, as if the tournament had started ``seconds_since_start`` ago."""
        async with sessions() as session:
            started = datetime.now(UTC) - timedelta(seconds=seconds_since_start)
            await session.execute(
                update(TournamentRow).where(TournamentRow.id == uuid.UUID(tournament_id)).values(started_at=started)
            )
            await session.commit()
            await clock.tick_clock(session)
            await session.commit()

    async def types() -> list[str]:
        async with sessions() as session:
            rows = await session.execute(
                text("SELECT type FROM outbox WHERE subject = :id ORDER BY created_at"), {"id": tournament_id}
            )
            return [row[0] for row in rows]

    await run_clock(61)
    lobby = ints((await client.get(f"/api/v1/tournaments/{tournament_id}")).json())
    assert lobby["clock"]["on_break"] is False, "the break waits for the table to finish its hand"
    [table] = ints((await client.get(f"/api/v1/tournaments/{tournament_id}/tables")).json())
    stacks = {str(s["entry"]): s["stack"] for s in table["seats"] if s is not None}
    headers = {"Authorization": f"Bearer {SERVICE.token('event')}"}
    body = {"hand_id": "before-break", "table": table["table"], "stacks": stacks}
    response = await client.post(f"/internal/v1/tournaments/{tournament_id}/hands", json=wire(body), headers=headers)
    assert [i["kind"] for i in response.json()["instructions"]][-2:] == ["hold_table", "start_break"]
    assert response.json()["clock"]["on_break"] is True
    await run_clock(100)
    lobby = ints((await client.get(f"/api/v1/tournaments/{tournament_id}")).json())
    assert (lobby["clock"]["on_break"], lobby["clock"]["level"], lobby["clock"]["big_blind"]) == (False, 2, 40)
    published = await types()
    assert published.index("event.break_started") < published.index("event.break_ended")
    assert published.count("event.level_changed") == 2, "level 1 at the start, level 2 after the break"
    await clock.wallet.aclose()


async def test_bad_configurations_are_refused_before_anything_starts(client: AsyncTestClient) -> None:
    for bad in (
        {"payout": {"fixed_bp": [6_000, 3_000]}},  # shares must sum to 10,000 basis points
        {"payout": {"fixed_bp": [3_000, 7_000]}},  # second place would win more than first
        {"levels": [{"small_blind": 50, "big_blind": 20}]},
        {"format": "satellite"},  # without a seat value
        {"breaks": [{"after_level": 0}]},
    ):
        response = await client.post("/api/v1/tournaments", json=wire({"name": "bad", **bad}), headers=DIRECTOR)
        assert 400 <= response.status_code < 500, (bad, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")


async def test_a_late_registration_cut_short_after_its_hold_is_finished_by_the_reconciler(
    client: AsyncTestClient, ledger: Ledger, settings: EventSettings, sessions: SessionFactory
) -> None:
    """A crash between the hold and the entry of a late registration: the reconciler posts it and seats
    the player (or would void it if registration had closed), so no money stays held for nothing."""
    tournament_id = uuid.UUID(
        await new_tournament(
            client, fee=0, late_reg_until_level=2, levels=[{"small_blind": 10, "big_blind": 20, "duration_s": 3600}]
        )
    )
    await register_players(client, ledger, str(tournament_id), 2)
    response = await client.post(f"/api/v1/tournaments/{tournament_id}/start", headers=DIRECTOR)
    assert response.status_code == 200, response.text
    player = uuid.uuid4()
    account = await ledger.fund(str(player), 5_000)
    async with sessions() as session:
        session.add(
            Registration(
                tournament_id=tournament_id,
                player_id=player,
                entry_no=1,
                status="holding",
                amount=1_000,
                hold_transfer_id=transfer_id(tournament_id, "hold", player, 1),
            )
        )
        await session.commit()
    reconciler = Tournaments(
        msgspec.structs.replace(settings, late_entry_grace_s=0.0),
        Wallet(settings.wallet_url, ServiceTokens.from_settings(settings)),
    )
    async with sessions() as session:
        await reconciler.reconcile(session)
        await session.commit()
        reg = await session.scalar(select(Registration).where(Registration.player_id == player))
    await reconciler.wallet.aclose()
    assert reg is not None
    assert (reg.status, reg.entry_id) == ("posted", 3)
    lobby = ints((await client.get(f"/api/v1/tournaments/{tournament_id}")).json())
    assert (lobby["entries"], lobby["players_left"], lobby["prize_pool"]) == (3, 3, 3_000)
    assert await ledger.available(account) == 4_000
    pool = await ledger.account(f"tournament:{tournament_id}", "prize_pool")
    assert await ledger.available(pool) == 3_000


async def test_a_satellite_that_buys_a_seat_for_everyone_pays_at_the_start(
    client: AsyncTestClient, ledger: Ledger
) -> None:
    tournament_id = await new_tournament(client, format="satellite", satellite_seat_value=1_000)
    players = await register_players(client, ledger, tournament_id, 2)
    response = await client.post(f"/api/v1/tournaments/{tournament_id}/start", headers=DIRECTOR)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "finished"
    for account in players.values():
        assert await ledger.available(account) == 5_000 - 1_100 + 1_000, "a seat's worth each, paid at once"
    pool = await ledger.account(f"tournament:{tournament_id}", "prize_pool")
    assert await ledger.available(pool) == 0


async def test_a_sit_and_go_starts_when_full_and_pays_out_the_pool(client: AsyncTestClient, ledger: Ledger) -> None:
    """The registration that fills the table starts it (no director); one more is refused, nothing held."""
    tournament_id = await new_tournament(client, format="sng", seats_per_table=3)
    players = await register_players(client, ledger, tournament_id, 3)
    lobby = ints((await client.get(f"/api/v1/tournaments/{tournament_id}")).json())
    assert (lobby["status"], lobby["entries"], lobby["prize_pool"], lobby["tables"]) == ("running", 3, 3_000, 1)
    late = str(uuid.uuid4())
    late_account = await ledger.fund(late, 5_000)
    response = await client.post(f"/api/v1/tournaments/{tournament_id}/registrations", headers=bearer(late, ["player"]))
    assert response.status_code == 409, response.text
    assert await ledger.available(late_account) == 5_000
    await play_to_the_end(client, tournament_id, seed=3)
    standings = ints((await client.get(f"/api/v1/tournaments/{tournament_id}/standings")).json())
    prizes = {row["player"]: row["prize"] for row in standings}
    for player, account in players.items():
        assert await ledger.available(account) == 5_000 - 1_100 + prizes[player]
    pool = await ledger.account(f"tournament:{tournament_id}", "prize_pool")
    assert await ledger.available(pool) == 0


REBUYS = {
    "levels": [{"small_blind": 10, "big_blind": 20, "duration_s": 60}, {"small_blind": 20, "big_blind": 40}],
    "breaks": [{"after_level": 1, "duration_s": 30}],
    "rebuy_until_level": 1,
    "rebuy_chips": 10_000,
    "addon_chips": 5_000,
}


async def test_rebuys_and_addons_are_charged_once_into_the_pool_and_paid_out(
    client: AsyncTestClient, ledger: Ledger, settings: EventSettings, sessions: SessionFactory
) -> None:
    from tablium_event.db.models import TournamentRow

    fees = await ledger.account("house", "house_fees")
    fees_before = await ledger.available(fees)
    tournament_id = await new_tournament(client, **REBUYS)
    players = await register_players(client, ledger, tournament_id, 4)
    response = await client.post(f"/api/v1/tournaments/{tournament_id}/start", headers=DIRECTOR)
    assert response.status_code == 200, response.text
    pool = await ledger.account(f"tournament:{tournament_id}", "prize_pool")
    assert await ledger.available(pool) == 4_000
    rebuyer, adder, late, _ = players
    url = f"/api/v1/tournaments/{tournament_id}"
    spent = dict.fromkeys(players, 1_100)

    async def buy(player: str, what: str, request_id: str) -> httpx.Response:
        return await client.post(f"{url}/{what}", json={"request_id": request_id}, headers=bearer(player, ["player"]))

    async def balances_are_as_spent(pool_balance: int) -> None:
        assert await ledger.available(pool) == pool_balance
        for player, account in players.items():
            assert await ledger.available(account) == 5_000 - spent[player], player

    # A rebuy: its price (buy-in + fee) from the player, the buy-in stays in the pool, the fee goes on to
    # the house; a retry of the same request charges once.
    request_id = str(uuid.uuid4())
    response = await buy(rebuyer, "rebuys", request_id)
    assert response.status_code == 201, response.text
    first = response.json()
    assert (first["kind"], first["status"], first["amount"]) == ("rebuy", "posted", "1100")
    spent[rebuyer] += 1_100
    retry = await buy(rebuyer, "rebuys", request_id)
    assert retry.status_code == 201, retry.text
    assert retry.json() == first
    await balances_are_as_spent(5_000)
    assert ints((await client.get(url)).json())["prize_pool"] == 5_000
    # Refused by the engine: a second rebuy while the first one's chips are not yet in play, and an
    # add-on outside a break. Nothing moves.
    for player, what in ((rebuyer, "rebuys"), (adder, "addons")):
        response = await buy(player, what, str(uuid.uuid4()))
        assert response.status_code == 409, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
    await balances_are_as_spent(5_000)
    # Someone without an entry cannot buy one.
    response = await buy(str(uuid.uuid4()), "rebuys", str(uuid.uuid4()))
    assert response.status_code == 409, response.text

    # The chips come with the table's next hand report, never mid-hand.
    headers = {"Authorization": f"Bearer {SERVICE.token('event')}"}
    [table] = ints((await client.get(f"{url}/tables")).json())
    seats = {s["player"]: s for s in table["seats"] if s is not None}
    assert seats[rebuyer]["stack"] == 10_000, "not during the hand"
    stacks = {str(s["entry"]): s["stack"] for s in seats.values()}
    body = {"hand_id": "rebuy-hand", "table": table["table"], "stacks": stacks}
    response = await client.post(f"/internal/v1/tournaments/{tournament_id}/hands", json=wire(body), headers=headers)
    assert response.status_code == 200, response.text
    set_stacks = [i for i in ints(response.json())["instructions"] if i["kind"] == "set_stack"]
    assert [(i["entry"], i["stack"], i["reason"]) for i in set_stacks] == [(seats[rebuyer]["entry"], 20_000, "rebuy")]

    clock = Tournaments(settings, Wallet(settings.wallet_url, ServiceTokens.from_settings(settings)))

    async def run_clock(seconds_since_start: int) -> None:
        async with sessions() as session:
            started = datetime.now(UTC) - timedelta(seconds=seconds_since_start)
            await session.execute(
                update(TournamentRow).where(TournamentRow.id == uuid.UUID(tournament_id)).values(started_at=started)
            )
            await session.commit()
            await clock.tick_clock(session)
            await session.commit()

    # The break after level 1: the add-on, once per entry.
    await run_clock(61)
    [table] = ints((await client.get(f"{url}/tables")).json())
    stacks = {str(s["entry"]): s["stack"] for s in table["seats"] if s is not None}
    body = {"hand_id": "before-break", "table": table["table"], "stacks": stacks}
    response = await client.post(f"/internal/v1/tournaments/{tournament_id}/hands", json=wire(body), headers=headers)
    assert response.json()["clock"]["on_break"] is True
    response = await buy(adder, "addons", str(uuid.uuid4()))
    assert response.status_code == 201, response.text
    assert (response.json()["kind"], response.json()["status"]) == ("addon", "posted")
    spent[adder] += 1_000
    response = await buy(adder, "addons", str(uuid.uuid4()))
    assert response.status_code == 409, "one add-on per entry"
    await balances_are_as_spent(6_000)
    # Level 2: the rebuy period is over; refused, nothing moved.
    await run_clock(100)
    assert (await client.get(url)).json()["clock"]["level"] == 2
    response = await buy(late, "rebuys", str(uuid.uuid4()))
    assert response.status_code == 409, response.text
    await balances_are_as_spent(6_000)
    await clock.wallet.aclose()

    # Played to the end: the pool paid out includes the rebuy and the add-on, every unit accounted for.
    await play_to_the_end(client, tournament_id)
    lobby = ints((await client.get(url)).json())
    assert (lobby["status"], lobby["prize_pool"]) == ("finished", 6_000)
    standings = ints((await client.get(f"{url}/standings")).json())
    prizes = {row["player"]: row["prize"] for row in standings}
    assert sum(prizes.values()) == 6_000
    assert await ledger.available(pool) == 0
    for player, account in players.items():
        assert await ledger.available(account) == 5_000 - spent[player] + prizes[player]
    assert await ledger.available(fees) - fees_before == 500, "four entry fees and the rebuy's; add-ons carry none"


async def test_cancel_refunds_rebuys_too(client: AsyncTestClient, ledger: Ledger) -> None:
    tournament_id = await new_tournament(client, **REBUYS)
    players = await register_players(client, ledger, tournament_id, 3)
    response = await client.post(f"/api/v1/tournaments/{tournament_id}/start", headers=DIRECTOR)
    assert response.status_code == 200, response.text
    rebuyer = next(iter(players))
    response = await client.post(
        f"/api/v1/tournaments/{tournament_id}/rebuys",
        json={"request_id": str(uuid.uuid4())},
        headers=bearer(rebuyer, ["player"]),
    )
    assert response.status_code == 201, response.text
    assert await ledger.available(players[rebuyer]) == 5_000 - 2_200
    response = await client.post(f"/api/v1/tournaments/{tournament_id}/cancel", headers=DIRECTOR)
    assert response.status_code == 200, response.text
    for account in players.values():
        assert await ledger.available(account) == 5_000
    pool = await ledger.account(f"tournament:{tournament_id}", "prize_pool")
    assert await ledger.available(pool) == 0


async def test_bad_rebuy_settings_are_refused(client: AsyncTestClient) -> None:
    for bad in (
        {"rebuy_chips": 5_000, "rebuy_until_level": 2, "buy_in": 0, "fee": 0},  # sold at the buy-in: needs one
        {"addon_chips": 5_000, "buy_in": 0},
        {"rebuy_chips": 5_000},  # no rebuy period
        {"rebuy_until_level": 3},  # a period without chips
        {"rebuy_chips": -1, "rebuy_until_level": 1},
        {"addon_chips": 5_000},  # no break after the rebuy period: no add-on break
    ):
        body = {"name": "bad", "buy_in": 1_000, **bad}
        response = await client.post("/api/v1/tournaments", json=wire(body), headers=DIRECTOR)
        assert 400 <= response.status_code < 500, (bad, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
    response = await client.post(
        "/api/v1/tournaments", json=wire({"name": "ok", "buy_in": 1_000, **REBUYS}), headers=DIRECTOR
    )
    assert response.status_code == 201, response.text
    tournament_id = response.json()["id"]
    response = await client.patch(
        f"/api/v1/tournaments/{tournament_id}",
        json=wire({"config": {"name": "ok", "buy_in": 0, "rebuy_chips": 10_000, "rebuy_until_level": 1}}),
        headers=DIRECTOR,
    )
    assert response.status_code == 422, response.text
    assert "buy-in" in response.json()["detail"]
    response = await client.post(
        f"/api/v1/tournaments/{tournament_id}/rebuys",
        json={"request_id": "not-a-uuid"},
        headers=bearer(str(uuid.uuid4()), ["player"]),
    )
    assert 400 <= response.status_code < 500, response.text


async def test_purchases_cut_short_are_finished_or_voided_by_the_reconciler(
    client: AsyncTestClient, ledger: Ledger, settings: EventSettings, sessions: SessionFactory
) -> None:
    """A crash after a purchase's row was written: the reconciler takes the hold and asks the engine;
    a rebuy it accepts is posted into the pool, an add-on it refuses (no break) is voided."""
    tournament_id = uuid.UUID(await new_tournament(client, **REBUYS))
    players = await register_players(client, ledger, str(tournament_id), 2)
    response = await client.post(f"/api/v1/tournaments/{tournament_id}/start", headers=DIRECTOR)
    assert response.status_code == 200, response.text
    [table] = ints((await client.get(f"/api/v1/tournaments/{tournament_id}/tables")).json())
    entries = {s["player"]: s["entry"] for s in table["seats"] if s is not None}
    rebuyer, adder = players
    async with sessions() as session:
        for player, kind in ((rebuyer, "rebuy"), (adder, "addon")):
            session.add(
                Purchase(
                    transfer_id=transfer_id(tournament_id, kind, player, uuid.uuid4()),
                    tournament_id=tournament_id,
                    player_id=uuid.UUID(player),
                    entry_id=entries[player],
                    kind=kind,
                    amount={"rebuy": 1_100, "addon": 1_000}[kind],
                    status="holding",
                )
            )
        await session.commit()
    reconciler = Tournaments(
        msgspec.structs.replace(settings, late_entry_grace_s=0.0),
        Wallet(settings.wallet_url, ServiceTokens.from_settings(settings)),
    )
    async with sessions() as session:
        await reconciler.reconcile(session)
        await session.commit()
        statuses = {
            p.kind: p.status
            for p in await session.scalars(select(Purchase).where(Purchase.tournament_id == tournament_id))
        }
    await reconciler.wallet.aclose()
    assert statuses == {"rebuy": "posted", "addon": "voided"}
    assert ints((await client.get(f"/api/v1/tournaments/{tournament_id}")).json())["prize_pool"] == 3_000
    pool = await ledger.account(f"tournament:{tournament_id}", "prize_pool")
    assert await ledger.available(pool) == 3_000
    assert await ledger.available(players[rebuyer]) == 5_000 - 1_100 - 1_100
    assert await ledger.available(players[adder]) == 5_000 - 1_100


@pytest.mark.parametrize("ending", ["played", "cancelled"])
async def test_pko_rebuys_charge_their_bounty_and_fee_and_every_unit_is_accounted(
    client: AsyncTestClient, ledger: Ledger, sessions: SessionFactory, ending: str
) -> None:
    """A PKO rebuy costs buy-in + bounty + fee: the buy-in counts towards the guarantee, the bounty part
    is paid as a bounty, the fee goes to the house. Played to the end, every unit the players paid is a
    prize, a bounty or a fee; cancelled, every unit is back with them; the pool ends at 0 either way."""
    fees = await ledger.account("house", "house_fees")
    adjustments = await ledger.account("house", "house_adjustments")
    tournament_id = await new_tournament(client, **REBUYS, bounty=200, guarantee=6_000)
    players = await register_players(client, ledger, tournament_id, 4)
    fees_before, adjustments_before = await ledger.available(fees), await ledger.available(adjustments)
    response = await client.post(f"/api/v1/tournaments/{tournament_id}/start", headers=DIRECTOR)
    assert response.status_code == 200, response.text
    pool = await ledger.account(f"tournament:{tournament_id}", "prize_pool")
    rebuyer = next(iter(players))
    url = f"/api/v1/tournaments/{tournament_id}"
    response = await client.post(
        f"{url}/rebuys", json={"request_id": str(uuid.uuid4())}, headers=bearer(rebuyer, ["player"])
    )
    assert response.status_code == 201, response.text
    assert ints(response.json())["amount"] == 1_300
    assert await ledger.available(players[rebuyer]) == 5_000 - 2 * 1_300
    assert await ledger.available(pool) == 5 * 1_200, "buy-ins and bounty parts in the pool, fees moved on"
    assert await ledger.available(fees) - fees_before == 5 * 100
    if ending == "cancelled":
        response = await client.post(f"{url}/cancel", headers=DIRECTOR)
        assert response.status_code == 200, response.text
        for account in players.values():
            assert await ledger.available(account) == 5_000
        assert await ledger.available(pool) == 0
        assert await ledger.available(fees) == fees_before, "the house gives back exactly the fees"
        assert await ledger.available(adjustments) == adjustments_before
        return
    # The rebuy's chips come with the next report; then played to a winner.
    [table] = ints((await client.get(f"{url}/tables")).json())
    stacks = {str(s["entry"]): s["stack"] for s in table["seats"] if s is not None}
    body = {"hand_id": "pko-rebuy-hand", "table": table["table"], "stacks": stacks}
    headers = {"Authorization": f"Bearer {SERVICE.token('event')}"}
    response = await client.post(f"/internal/v1/tournaments/{tournament_id}/hands", json=wire(body), headers=headers)
    assert response.status_code == 200, response.text
    await play_to_the_end(client, tournament_id, seed=3)
    assert (await client.get(url)).json()["status"] == "finished"
    async with sessions() as session:
        prizes = (await session.scalars(select(Prize).where(Prize.tournament_id == uuid.UUID(tournament_id)))).all()
    assert {p.status for p in prizes} == {"paid"}
    by_kind = {kind: sum(p.amount for p in prizes if p.kind == kind) for kind in ("place", "bounty")}
    # 5,000 of buy-ins (the rebuy's counted) topped up to the 6,000 guarantee; 5 bounty parts of 200.
    assert by_kind == {"place": 6_000, "bounty": 1_000}
    assert adjustments_before - await ledger.available(adjustments) == 1_000, "the overlay: 6,000 - 5,000"
    assert await ledger.available(pool) == 0
    assert await ledger.available(fees) - fees_before == 5 * 100, "house fees are exactly the fees"
    won = dict.fromkeys(players, 0)
    for prize in prizes:
        won[str(prize.player_id)] += prize.amount
    for player, account in players.items():
        paid = 1_300 * (2 if player == rebuyer else 1)
        assert await ledger.available(account) == 5_000 - paid + won[player]


@pytest.mark.parametrize("how", ["start", "reconciler"])
async def test_a_start_left_with_fewer_than_two_entries_is_cancelled_and_refunded(
    client: AsyncTestClient, ledger: Ledger, settings: EventSettings, sessions: SessionFactory, how: str
) -> None:
    """Holds that expired before the start's posts (voided in the wallet behind the service's back):
    one entry posted is not a tournament. It is cancelled, the entry refunded (fee included), the
    others voided, and event.tournament_cancelled published once — not left ``starting``."""
    from tablium_event.db.models import TournamentRow

    fees = await ledger.account("house", "house_fees")
    fees_before = await ledger.available(fees)
    tournament_id = await new_tournament(client)
    players = await register_players(client, ledger, tournament_id, 3)
    wallet = Wallet(settings.wallet_url, ServiceTokens.from_settings(settings))
    for player in list(players)[1:]:
        result = await wallet.void(transfer_id(uuid.UUID(tournament_id), "hold", uuid.UUID(player), 1))
        assert result["status"] == "voided"
    if how == "start":
        response = await client.post(f"/api/v1/tournaments/{tournament_id}/start", headers=DIRECTOR)
        assert response.status_code == 409, response.text
        assert "cancelled" in response.json()["detail"]
    else:  # a start cut short right after ``starting`` was committed, finished by the reconciler
        async with sessions() as session:
            await session.execute(
                update(TournamentRow).where(TournamentRow.id == uuid.UUID(tournament_id)).values(status="starting")
            )
            await session.commit()
        reconciler = Tournaments(msgspec.structs.replace(settings, late_entry_grace_s=0.0), wallet)
        for _ in range(2):  # a second pass finds nothing left to do
            async with sessions() as session:
                await reconciler.reconcile(session)
                await session.commit()
    await wallet.aclose()
    assert (await client.get(f"/api/v1/tournaments/{tournament_id}")).json()["status"] == "cancelled"
    for account in players.values():
        assert await ledger.available(account) == 5_000
    pool = await ledger.account(f"tournament:{tournament_id}", "prize_pool")
    assert await ledger.available(pool) == 0
    assert await ledger.available(fees) == fees_before
    async with sessions() as session:
        statuses = sorted(
            (
                await session.scalars(
                    select(Registration.status).where(Registration.tournament_id == uuid.UUID(tournament_id))
                )
            ).all()
        )
        cancelled = await session.scalar(
            text("SELECT count(*) FROM outbox WHERE subject = :id AND type = 'event.tournament_cancelled'"),
            {"id": tournament_id},
        )
    assert statuses == ["failed", "failed", "refunded"]
    assert cancelled == 1
    response = await client.post(f"/api/v1/tournaments/{tournament_id}/start", headers=DIRECTOR)
    assert response.status_code == 409, "over: never started again"


async def test_bad_input_on_every_endpoint_is_a_problem_4xx(client: AsyncTestClient, ledger: Ledger) -> None:
    """Malformed JSON, wrong types, unknown fields, unknown ids: problem+json 4xx everywhere, never a 500."""
    draft = await new_tournament(client)
    running = await new_tournament(client)
    await register_players(client, ledger, running, 3)
    assert (await client.post(f"/api/v1/tournaments/{running}/start", headers=DIRECTOR)).status_code == 200
    player = bearer(str(uuid.uuid4()), ["player"])
    lobby = {"Authorization": f"Bearer {SERVICE.token('event')}"}
    base = "/api/v1/tournaments"
    cases: list[tuple[str, str, Any, dict[str, str]]] = [
        ("POST", base, raw, DIRECTOR) for raw in (b"{", b"[]", b"null", b'{"name": 5}', b'{"name": "x", "typo": 1}')
    ]
    for bad in (
        {"seats_per_table": 1},
        {"levels": [{"small_blind": 1, "big_blind": 2, "typo": 1}]},
        {"levels": []},
        {"payout": {"paid_fraction": 0.0}},
        {"payout": {"fixed_bp": [0, 10_000]}},
        {"payout": {"round_to": 0}},
        {"starting_stack": 0},
        {"seed": "abc"},
    ):
        cases.append(("POST", base, {"name": "x", **bad}, DIRECTOR))
    hand = "/internal/v1/tournaments/{}/hands"
    for tid in (draft, running, str(uuid.uuid4())):
        cases += [
            ("PATCH", f"{base}/{tid}", b"{", DIRECTOR),
            ("PATCH", f"{base}/{tid}", {"typo": 1}, DIRECTOR),
            ("POST", f"{base}/{tid}/undo", {"what": "hand"}, DIRECTOR),
            ("POST", f"{base}/{tid}/undo", {"what": "bust", "stack": 10, "from_entry": 999}, DIRECTOR),
            ("POST", f"{base}/{tid}/undo", {"what": "move"}, DIRECTOR),
            ("POST", f"{base}/{tid}/seat-locks", {"entry": 999}, DIRECTOR),
            ("POST", f"{base}/{tid}/seat-locks", {"entry": 1, "locked": "yes"}, DIRECTOR),
            ("POST", f"{base}/{tid}/tolerance", {"tolerance": 0}, DIRECTOR),
            ("GET", f"{base}/{tid}/decisions?since=-1", None, DIRECTOR),
            ("GET", f"{base}/{tid}/deal?method=dice", None, DIRECTOR),
            ("GET", f"{base}/{tid}/tables/99999999999999999999999", None, {}),
            ("GET", f"{base}/{tid}/standings?limit=0", None, {}),
            ("GET", f"{base}/{tid}/entries?limit=0", None, {}),
            ("GET", f"{base}/{tid}/entries?offset=x", None, {}),
            ("POST", f"{base}/{tid}/rebuys", {"request_id": "x"}, player),
            ("POST", f"{base}/{tid}/addons", {"request_id": str(uuid.uuid4())}, player),
            ("DELETE", f"{base}/{tid}/registrations/me", None, player),
            ("POST", hand.format(tid), b"{", lobby),
            ("POST", hand.format(tid), {"hand_id": "1", "table": 1, "stacks": {"a": 1}}, lobby),
            ("POST", hand.format(tid), {"hand_id": "2", "table": 1, "stacks": {"1": -1}}, lobby),
            ("POST", hand.format(tid), {"hand_id": "3", "table": 99, "stacks": {"1": 1}}, lobby),
            ("POST", hand.format(tid), {"hand_id": "4", "table": 1, "stacks": {"1": 1}}, lobby),
            (
                "POST",
                hand.format(tid),
                {"hand_id": "5", "table": 1, "stacks": {"1": 0}, "knockouts": {"x": [1]}},
                lobby,
            ),
            ("POST", f"{base}/{tid}/open", None, DIRECTOR),
            ("POST", f"{base}/{tid}/resume", None, DIRECTOR),
        ]
    cases += [("GET", f"{base}/not-a-uuid", None, {}), ("GET", f"{base}?limit=abc", None, {})]
    answers = []
    for method, url, body, headers in cases:
        if isinstance(body, bytes):
            response = await client.request(
                method, url, content=body, headers={**headers, "content-type": "application/json"}
            )
        else:
            response = await client.request(method, url, json=wire(body), headers=headers)
        answers.append((response.status_code, response.headers.get("content-type", ""), method, url, body))
    wrong = [a for a in answers if not (400 <= a[0] < 500 and a[1].startswith("application/problem+json"))]
    assert not wrong, wrong


async def report_hand(
    client: AsyncTestClient, tournament_id: str, hand_id: str, table: int, stacks: dict[int, int]
) -> list[dict[str, Any]]:
    """The lobby reports a hand of ``table``; returns the instructions of the answer."""
    headers = {"Authorization": f"Bearer {SERVICE.token('event')}"}
    body = {"hand_id": hand_id, "table": table, "stacks": {str(e): s for e, s in stacks.items()}}
    response = await client.post(f"/internal/v1/tournaments/{tournament_id}/hands", json=wire(body), headers=headers)
    assert response.status_code == 200, response.text
    instructions: list[dict[str, Any]] = ints(response.json())["instructions"]
    return instructions


async def table_stacks(client: AsyncTestClient, tournament_id: str) -> dict[int, dict[int, int]]:
    """table -> entry -> chips, as the lobby shows them."""
    tables = ints((await client.get(f"/api/v1/tournaments/{tournament_id}/tables")).json())
    return {t["table"]: {s["entry"]: s["stack"] for s in t["seats"] if s is not None} for t in tables}


async def outbox_of(sessions: SessionFactory, tournament_id: str) -> list[tuple[str, str, dict[str, Any]]]:
    """(event id, type, data) of the tournament's events, in the order the relay publishes them."""
    async with sessions() as session:
        rows = await session.execute(
            text("SELECT id, type, envelope FROM outbox WHERE subject = :id ORDER BY seq"), {"id": tournament_id}
        )
        return [(str(row[0]), row[1], row[2]["data"]) for row in rows]


async def test_only_the_lobby_reports_hands(client: AsyncTestClient) -> None:
    """Issue 11, item 9: any service's token used to be taken. A hand report moves no money itself, but its
    stacks decide the standings, and so the prizes."""
    url = f"/internal/v1/tournaments/{uuid.uuid4()}/hands"
    body = {"hand_id": "h1", "table": 1, "stacks": {}}
    for name in ("wallet", "player", "event"):
        headers = {"Authorization": f"Bearer {ServiceTokens.development(name).token('event')}"}
        response = await client.post(url, json=body, headers=headers)
        assert response.status_code == 403, (name, response.text)
    headers = {"Authorization": f"Bearer {SERVICE.token('wallet')}"}  # the lobby's, for another service
    assert (await client.post(url, json=body, headers=headers)).status_code == 401
    headers = {"Authorization": f"Bearer {SERVICE.token('event')}"}
    assert (await client.post(url, json=body, headers=headers)).status_code == 404  # let in: no such tournament


async def test_the_lobby_lists_who_is_registered_before_and_after_the_start(
    client: AsyncTestClient, ledger: Ledger
) -> None:
    tournament_id = await new_tournament(client)
    url = f"/api/v1/tournaments/{tournament_id}/entries"
    assert (await client.get(url)).json() == [], "nobody yet"
    players = list(await register_players(client, ledger, tournament_id, 4))
    response = await client.delete(
        f"/api/v1/tournaments/{tournament_id}/registrations/me", headers=bearer(players[1], ["player"])
    )
    assert response.status_code == 200, response.text
    # Public (no token), in registration order, without the one who unregistered.
    response = await client.get(url)
    assert response.status_code == 200, response.text
    before = response.json()
    assert [(e["player_id"], e["entry_no"], e["status"], e["entry_id"]) for e in before] == [
        (p, 1, "registered", None) for p in (players[0], players[2], players[3])
    ]
    registered_at = [datetime.fromisoformat(e["registered_at"]) for e in before]
    assert registered_at == sorted(registered_at)
    # Bounded and paginated.
    page = (await client.get(url, params={"offset": 1, "limit": 1})).json()
    assert [e["player_id"] for e in page] == [players[2]]
    assert (await client.get(url, params={"offset": 3})).json() == []
    for bad in ({"limit": 0}, {"limit": 1001}, {"offset": -1}, {"limit": "x"}):
        response = await client.get(url, params=bad)
        assert response.status_code == 400, (bad, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
    response = await client.get(f"/api/v1/tournaments/{uuid.uuid4()}/entries")
    assert response.status_code == 404, response.text

    response = await client.post(f"/api/v1/tournaments/{tournament_id}/start", headers=DIRECTOR)
    assert response.status_code == 200, response.text
    after = (await client.get(url)).json()
    assert [(e["player_id"], e["entry_no"], e["status"]) for e in after] == [
        (p, 1, "entered") for p in (players[0], players[2], players[3])
    ]
    seated = {
        s["player"]: s["entry"]
        for t in ints((await client.get(f"/api/v1/tournaments/{tournament_id}/tables")).json())
        for s in t["seats"]
        if s is not None
    }
    assert {e["player_id"]: e["entry_id"] for e in after} == seated, "the entry id the tables and standings use"


async def test_a_director_undo_of_a_bust_out_is_published(
    client: AsyncTestClient, ledger: Ledger, sessions: SessionFactory
) -> None:
    """event.player_eliminated consumers learn of the undo: event.elimination_undone with the place undone."""
    tournament_id = await new_tournament(client, fee=0)
    await register_players(client, ledger, tournament_id, 4)
    response = await client.post(f"/api/v1/tournaments/{tournament_id}/start", headers=DIRECTOR)
    assert response.status_code == 200, response.text
    [(table, stacks)] = (await table_stacks(client, tournament_id)).items()
    loser, winner = list(stacks)[:2]
    players = {
        e["entry_id"]: e["player_id"] for e in (await client.get(f"/api/v1/tournaments/{tournament_id}/entries")).json()
    }
    stacks[winner] += stacks[loser]
    stacks[loser] = 0
    out = await report_hand(client, tournament_id, "bust", table, stacks)
    assert [(i["entry"], i["place"]) for i in out if i["kind"] == "eliminate_player"] == [(loser, 4)]
    response = await client.post(
        f"/api/v1/tournaments/{tournament_id}/undo",
        json=wire({"what": "bust", "stack": 1_000, "from_entry": winner}),
        headers=DIRECTOR,
    )
    assert response.status_code == 200, response.text
    assert "event.elimination_undone" not in [t for _, t, _ in await outbox_of(sessions, tournament_id)], (
        "the table is dealing: the undo happens when it reports that hand"
    )
    del stacks[loser]
    out = await report_hand(client, tournament_id, "after-undo", table, stacks)
    assert [i["kind"] for i in out if i.get("entry") == loser][:2] == ["elimination_undone", "seat_player"]
    undone = [data for _, t, data in await outbox_of(sessions, tournament_id) if t == "event.elimination_undone"]
    assert len(undone) == 1
    assert {k: undone[0][k] for k in ("tournament_id", "entry", "player", "table", "place", "place_to")} == {
        "tournament_id": tournament_id,
        "entry": loser,
        "player": players[loser],
        "table": table,
        "place": 4,
        "place_to": 4,
    }
    lobby = ints((await client.get(f"/api/v1/tournaments/{tournament_id}")).json())
    assert lobby["players_left"] == 4


async def test_a_director_undo_of_a_move_sends_the_player_back_to_their_seat(
    client: AsyncTestClient, ledger: Ledger, sessions: SessionFactory
) -> None:
    tournament_id = await new_tournament(client, fee=0, seats_per_table=4)
    await register_players(client, ledger, tournament_id, 7)
    response = await client.post(f"/api/v1/tournaments/{tournament_id}/start", headers=DIRECTOR)
    assert response.status_code == 200, response.text
    undo_url = f"/api/v1/tournaments/{tournament_id}/undo"
    response = await client.post(undo_url, json={"what": "move"}, headers=DIRECTOR)
    assert response.status_code == 409, "no move yet"
    assert response.headers["content-type"].startswith("application/problem+json")
    tables = await table_stacks(client, tournament_id)
    short, long = sorted(tables, key=lambda t: len(tables[t]))
    assert (len(tables[short]), len(tables[long])) == (3, 4)
    # A bust at the short table: 2 against 4, so one player of the long table moves once its hand ends.
    stacks = tables[short]
    loser, winner = list(stacks)[:2]
    stacks[winner] += stacks[loser]
    stacks[loser] = 0
    out = await report_hand(client, tournament_id, "bust", short, stacks)
    assert not [i for i in out if i["kind"] == "move_player"], "the long table is mid-hand"
    out = await report_hand(client, tournament_id, "long-1", long, tables[long])
    [move] = [i for i in out if i["kind"] == "move_player"]
    assert (move["from_table"], move["to_table"]) == (long, short)
    # The director undoes it: the player goes back to the very seat, once the short table is between hands.
    response = await client.post(undo_url, json={"what": "move"}, headers=DIRECTOR)
    assert response.status_code == 200, response.text
    tables = await table_stacks(client, tournament_id)
    assert move["entry"] in tables[short], "not mid-hand"
    out = await report_hand(client, tournament_id, "short-2", short, tables[short])
    [back] = [i for i in out if i["kind"] == "move_player"]
    assert (back["entry"], back["from_table"], back["from_seat"], back["to_table"], back["to_seat"]) == (
        move["entry"],
        short,
        move["to_seat"],
        long,
        move["from_seat"],
    )
    tables = ints((await client.get(f"/api/v1/tournaments/{tournament_id}/tables")).json())
    seat_of = {s["entry"]: (t["table"], i) for t in tables for i, s in enumerate(t["seats"]) if s is not None}
    assert seat_of[move["entry"]] == (long, move["from_seat"])
    moved = [data for _, t, data in await outbox_of(sessions, tournament_id) if t == "event.player_moved"]
    assert [(d["entry"], d["from_table"], d["to_table"]) for d in moved] == [
        (move["entry"], long, short),
        (move["entry"], short, long),
    ]
    decisions = (await client.get(f"/api/v1/tournaments/{tournament_id}/decisions", headers=DIRECTOR)).json()
    assert any(row["kind"] == "undo-move" for row in decisions)


@pytest.fixture
async def event_listener(amqp_names: AmqpNames) -> AsyncIterator[list[aio_pika.abc.AbstractIncomingMessage]]:
    """A test queue bound to the run's events exchange with ``event.#``: every event message, as delivered."""
    messages: list[aio_pika.abc.AbstractIncomingMessage] = []
    connection = await aio_pika.connect(amqp_names.url)
    async with connection:
        channel = await connection.channel()
        exchange = await channel.declare_exchange(amqp_names.exchange, aio_pika.ExchangeType.TOPIC, durable=True)
        queue = await channel.declare_queue(exclusive=True)
        await queue.bind(exchange, "event.#")

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            messages.append(message)
            await message.ack()

        await queue.consume(on_message)
        yield messages


async def test_a_whole_tournament_publishes_its_events_over_rabbitmq_once_each_in_order(
    client: AsyncTestClient,
    ledger: Ledger,
    sessions: SessionFactory,
    event_listener: list[aio_pika.abc.AbstractIncomingMessage],
) -> None:
    """The app's own relay publishes the outbox to the real broker: every event of the tournament arrives
    once, as a CloudEvents envelope, in the order it was written, from the creation to the finish."""
    tournament_id = await new_tournament(client, seats_per_table=4)
    await register_players(client, ledger, tournament_id, 7)
    response = await client.post(f"/api/v1/tournaments/{tournament_id}/start", headers=DIRECTOR)
    assert response.status_code == 200, response.text
    await play_to_the_end(client, tournament_id, seed=7)
    written = await outbox_of(sessions, tournament_id)

    def arrived() -> list[aio_pika.abc.AbstractIncomingMessage]:
        return [m for m in event_listener if decode(m.body).subject == tournament_id]

    async with asyncio.timeout(30):
        while len(arrived()) < len(written):  # noqa: ASYNC110 - waiting for the relay and the broker
            await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)  # would a second copy still arrive?
    messages = arrived()
    events = [decode(m.body) for m in messages]
    assert [str(e.id) for e in events] == [event_id for event_id, _, _ in written], "each once, in order"
    for message, event in zip(messages, events, strict=True):
        assert (message.content_type, message.message_id, message.routing_key) == (
            CONTENT_TYPE,
            str(event.id),
            event.type,
        )
        assert (event.specversion, event.source, event.datacontenttype) == (
            "1.0",
            "/services/event",
            "application/json",
        )
        assert event.data["tournament_id"] == tournament_id
    seqs = [e.data["seq"] for e in events]
    assert seqs == sorted(seqs), "the tournament's version never goes back"
    facts = [e.type for e in events if e.type != "event.table_instructions"]
    assert facts[:4] == [
        "event.tournament_created",
        "event.registration_opened",
        "event.tournament_started",
        "event.level_changed",
    ]
    assert facts[-1] == "event.tournament_finished"
    for once in ("event.tournament_created", "event.registration_opened", "event.tournament_started"):
        assert facts.count(once) == 1, once
    assert facts.count("event.tournament_finished") == 1
    busts = [e.data for e in events if e.type == "event.player_eliminated"]
    assert len({b["entry"] for b in busts}) == len(busts) == 6, "every bust-out once"
    # A tie (same hand, same starting stack) shares the places it covers: 2..7, each covered once.
    ranges = sorted({(b["place"], b["place_to"]) for b in busts})
    assert [p for first, last in ranges for p in range(first, last + 1)] == list(range(2, 8))
    for first, last in ranges:
        assert sum((b["place"], b["place_to"]) == (first, last) for b in busts) == last - first + 1
    assert "event.player_moved" in facts
    prizes = [e.data for e in events if e.type == "event.prize_awarded"]
    assert prizes
    assert {p["asset"] for p in prizes} == {"USDT"}
    # Money travels as decimal strings in events too.
    assert sum(int(p["amount"]) for p in prizes) == 7_000, "the prize pool, awarded once"
    created = next(e.data for e in events if e.type == "event.tournament_created")
    assert (created["config"]["buy_in"], created["config"]["starting_stack"]) == ("1000", "10000")
    level = next(e.data for e in events if e.type == "event.level_changed")
    assert all(isinstance(level[key], str) for key in ("small_blind", "big_blind", "ante"))
    seats = [
        i
        for e in events
        if e.type == "event.table_instructions"
        for i in e.data["instructions"]
        if i["kind"] == "seat_player"
    ]
    assert seats
    assert all(i["stack"] == "10000" for i in seats)


async def test_money_and_chips_travel_as_decimal_strings_past_64_bits(client: AsyncTestClient, ledger: Ledger) -> None:
    """Buy-ins of 10^24 minor units (past 2^64) through the real wallet, and strict amounts on the way in."""
    big = 10**24
    body = {"name": "High roller", "buy_in": str(big), "fee": "7", "starting_stack": str(2**100), "seed": 1}
    response = await client.post("/api/v1/tournaments", json=body, headers=DIRECTOR)
    assert response.status_code == 201, response.text
    created = response.json()
    assert (created["config"]["buy_in"], created["config"]["starting_stack"]) == (str(big), str(2**100))
    tournament_id = created["id"]
    assert (await client.post(f"/api/v1/tournaments/{tournament_id}/open", headers=DIRECTOR)).status_code == 200
    listed = (await client.get("/api/v1/tournaments")).json()
    summary = next(t for t in listed if t["id"] == tournament_id)
    assert (summary["buy_in"], summary["fee"], summary["starts_with"]) == (str(big), "7", str(2**100))
    players = [str(uuid.uuid4()) for _ in range(2)]
    for player in players:
        await ledger.fund(player, 3 * big)
        response = await client.post(
            f"/api/v1/tournaments/{tournament_id}/registrations", headers=bearer(player, ["player"])
        )
        assert response.status_code == 201, response.text
        assert response.json()["amount"] == str(big + 7)
    response = await client.post(f"/api/v1/tournaments/{tournament_id}/start", headers=DIRECTOR)
    assert response.status_code == 200, response.text
    lobby = response.json()
    assert lobby["prize_pool"] == str(2 * big)
    assert sum(int(prize) for prize in lobby["payouts"]) == 2 * big
    assert all(isinstance(prize, str) for prize in lobby["payouts"])
    pool = await ledger.account(f"tournament:{tournament_id}", "prize_pool")
    assert await ledger.available(pool) == 2 * big
    (table,) = (await client.get(f"/api/v1/tournaments/{tournament_id}/tables")).json()
    assert [seat["stack"] for seat in table["seats"] if seat is not None] == [str(2**100)] * 2
    assert all(isinstance(lobby["clock"][key], str) for key in ("small_blind", "big_blind", "ante"))

    for bad in (1000, 1e3, "1e3", "5.0", " 5", "+5", "05", "5\n", str(2**128)):
        response = await client.post("/api/v1/tournaments", json={"name": "bad", "buy_in": bad}, headers=DIRECTOR)
        assert response.status_code in (400, 422), (bad, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
    headers = {"Authorization": f"Bearer {SERVICE.token('event')}"}
    seat = next(s for s in table["seats"] if s is not None)
    for bad in (2**100, "1e3", "-1"):
        body = {"hand_id": "bad", "table": table["table"], "stacks": {str(seat["entry"]): bad}}
        response = await client.post(f"/internal/v1/tournaments/{tournament_id}/hands", json=body, headers=headers)
        assert response.status_code == 400, (bad, response.text)


async def test_a_freeroll_takes_no_money_and_registers_unregisters_starts_and_cancels(
    client: AsyncTestClient, ledger: Ledger
) -> None:
    """Issue 10, item 3: the wallet refuses a zero-amount hold, so a free tournament (the default
    configuration) could not be registered for (502), and unregister and cancel failed the same way,
    leaving it ``cancelling``. A freeroll takes no hold at all, no fee and no refund."""
    fees = await ledger.account("house", "house_fees")
    fees_before = await ledger.available(fees)
    for guarantee, ending in ((0, "played"), (0, "cancelled"), (1_000, "played")):
        tournament_id = await new_tournament(client, buy_in=0, fee=0, guarantee=guarantee)
        url = f"/api/v1/tournaments/{tournament_id}"
        players = [str(uuid.uuid4()) for _ in range(4)]
        for player in players:
            response = await client.post(f"{url}/registrations", headers=bearer(player, ["player"]))
            assert response.status_code == 201, response.text
            assert response.json()["status"] == "held"
        response = await client.delete(f"{url}/registrations/me", headers=bearer(players.pop(), ["player"]))
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "voided"
        if ending == "cancelled":
            response = await client.post(f"{url}/cancel", headers=DIRECTOR)
            assert response.status_code == 200, response.text
            assert (await client.get(url)).json()["status"] == "cancelled"
            continue
        response = await client.post(f"{url}/start", headers=DIRECTOR)
        assert response.status_code == 200, response.text
        assert (ints(response.json())["entries"], ints(response.json())["prize_pool"]) == (3, guarantee)
        await play_to_the_end(client, tournament_id)
        assert (await client.get(url)).json()["status"] == "finished"
        standings = ints((await client.get(f"{url}/standings")).json())
        assert sum(row["prize"] or 0 for row in standings) == guarantee
        for player in players:
            account = await ledger.account(f"player:{player}", "player")
            won = sum(row["prize"] or 0 for row in standings if row["player"] == player)
            assert await ledger.available(account) == won, "a freeroll's player only ever receives"
        pool = await ledger.account(f"tournament:{tournament_id}", "prize_pool")
        assert await ledger.available(pool) == 0
    assert await ledger.available(fees) == fees_before, "no fee"


async def test_a_guarantee_topped_up_before_a_rebuy_is_corrected_by_a_new_step_not_refused(
    client: AsyncTestClient, ledger: Ledger, sessions: SessionFactory
) -> None:
    """Issue 10, item 7: PKO with a guarantee, a bust (bounty paid, overlay topped up), a rebuy (the
    overlay owed shrinks), a second bust: the overlay's one fixed transfer id got another amount, the
    wallet refused it ("exists with a different body"), the hand report answered 502 and the bounty
    stayed owed for ever. Now each change is its own step; the surplus goes back to the house."""
    adjustments = await ledger.account("house", "house_adjustments")
    tournament_id = await new_tournament(client, **REBUYS, bounty=200, guarantee=6_000)
    players = await register_players(client, ledger, tournament_id, 4)
    adjustments_before = await ledger.available(adjustments)
    response = await client.post(f"/api/v1/tournaments/{tournament_id}/start", headers=DIRECTOR)
    assert response.status_code == 200, response.text
    url = f"/api/v1/tournaments/{tournament_id}"
    pool = await ledger.account(f"tournament:{tournament_id}", "prize_pool")
    headers = {"Authorization": f"Bearer {SERVICE.token('event')}"}

    async def bust(hand_id: str, busted: str, by: str) -> None:
        [table] = ints((await client.get(f"{url}/tables")).json())
        seats = {s["player"]: s for s in table["seats"] if s is not None}
        stacks = {str(s["entry"]): s["stack"] for s in seats.values()}
        stacks[str(seats[by]["entry"])] += stacks[str(seats[busted]["entry"])]
        stacks[str(seats[busted]["entry"])] = 0
        body = {
            "hand_id": hand_id,
            "table": table["table"],
            "stacks": stacks,
            "knockouts": {str(seats[busted]["entry"]): [seats[by]["entry"]]},
        }
        response = await client.post(
            f"/internal/v1/tournaments/{tournament_id}/hands", json=wire(body), headers=headers
        )
        assert response.status_code == 200, response.text

    first, second, rebuyer, hunter = players
    await bust("bust-1", first, hunter)
    assert adjustments_before - await ledger.available(adjustments) == 2_000, "topped up: 6,000 - 4 x 1,000"
    response = await client.post(
        f"{url}/rebuys", json={"request_id": str(uuid.uuid4())}, headers=bearer(rebuyer, ["player"])
    )
    assert response.status_code == 201, response.text
    await bust("bust-2", second, hunter)
    assert adjustments_before - await ledger.available(adjustments) == 1_000, "1,000 of surplus back to the house"
    async with sessions() as session:
        owed = (await session.scalars(select(Prize).where(Prize.status.in_(("owed", "paying"))))).all()
    assert not owed, "every bounty paid"
    await play_to_the_end(client, tournament_id, seed=5)
    assert (await client.get(url)).json()["status"] == "finished"
    async with sessions() as session:
        prizes = (await session.scalars(select(Prize).where(Prize.tournament_id == uuid.UUID(tournament_id)))).all()
    by_kind = {kind: sum(p.amount for p in prizes if p.kind == kind) for kind in ("place", "bounty")}
    assert by_kind == {"place": 6_000, "bounty": 5 * 200}
    assert await ledger.available(pool) == 0, "nothing stranded in the pool"
    assert adjustments_before - await ledger.available(adjustments) == 1_000, "the house paid the overlay once"
