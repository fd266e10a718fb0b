"""Quick seat under races, over real HTTP against a lobby process: parallel identical requests have one
effect, two players for one seat end one seated and one waiting, an offer taken twice seats once. And one
interleaving of identical requests forced in-process (a request's look at the player's standing straddling
another's sit-down), which the parallel ones hit only now and then."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from litestar.testing import AsyncTestClient
from lobby_support import Ledger, LobbyProcess, bearer, new_table
from quick_seat_support import entries, eventually, funded, offer_of, quick_seat, stakes
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from tablium_lobby.clients.wallet import Wallet
from tablium_lobby.db.models import ACTIVE_SEAT, Seat
from tablium_lobby.db.waiting import SeatOffer
from tablium_lobby.services.lists import ListKey
from tablium_lobby.services.matching import Matching
from tablium_lobby.services.registry import Registry
from tablium_lobby.services.seating import Seating
from tablium_lobby.settings import LobbySettings

from tablium_kit import db
from tablium_kit.service_identity import ServiceTokens

FUNDS = 100_000


@pytest.fixture(scope="module")
async def http(start_lobby: Any) -> Any:
    lobby: LobbyProcess = await start_lobby()
    async with httpx.AsyncClient(base_url=lobby.url, timeout=60) as client:
        yield client


async def seated_players(http: httpx.AsyncClient, table_id: str) -> list[str]:
    view = (await http.get(f"/api/v1/tables/{table_id}")).json()
    return [p["player_id"] for p in view["players"]]


async def test_parallel_identical_quick_seats_take_one_seat(http: httpx.AsyncClient, ledger: Ledger) -> None:
    small, big = stakes()
    buy_in = 50 * big
    table = await new_table(http, small_blind=str(small), big_blind=str(big), seats=6)
    await new_table(http, small_blind=str(small), big_blind=str(big), seats=6)
    [player] = await funded(ledger, [str(uuid.uuid4())], FUNDS)
    answers = await asyncio.gather(*(quick_seat(http, player, small, big, 6, buy_in) for _ in range(8)))
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    statuses = Counter(a.json()["status"] for a in answers)
    assert statuses["seated"] >= 1, statuses
    assert set(statuses) <= {"seated", "offered"}, statuses
    assert {a.json()["table_id"] for a in answers if a.json()["status"] == "seated"} == {table["id"]}
    assert await seated_players(http, table["id"]) == [player]
    assert await ledger.player_balance(player) == FUNDS - buy_in
    assert await entries(http, player) == []


async def test_parallel_identical_quick_seats_at_full_tables_make_one_entry(
    http: httpx.AsyncClient, ledger: Ledger
) -> None:
    small, big = stakes()
    buy_in = 50 * big
    await new_table(http, small_blind=str(small), big_blind=str(big), seats=2)
    first = await funded(ledger, [str(uuid.uuid4()) for _ in range(2)], FUNDS)
    for player in first:
        assert (await quick_seat(http, player, small, big, 2, buy_in)).json()["status"] == "seated"
    [player] = await funded(ledger, [str(uuid.uuid4())], FUNDS)
    answers = await asyncio.gather(*(quick_seat(http, player, small, big, 2, buy_in) for _ in range(8)))
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    assert {(a.json()["status"], a.json()["entry"]["id"], a.json()["entry"]["position"]) for a in answers} == {
        ("waiting", answers[0].json()["entry"]["id"], 1)
    }
    assert [e["position"] for e in await entries(http, player)] == [1]
    assert await ledger.player_balance(player) == FUNDS


@pytest.mark.parametrize("round_", range(3))
async def test_two_players_racing_for_the_last_seat_one_sits_one_waits(
    http: httpx.AsyncClient, ledger: Ledger, round_: int
) -> None:
    small, big = stakes()
    buy_in = 50 * big
    table = await new_table(http, small_blind=str(small), big_blind=str(big), seats=2)
    first, *racers = await funded(ledger, [str(uuid.uuid4()) for _ in range(3)], FUNDS)
    assert (await quick_seat(http, first, small, big, 2, buy_in)).json()["status"] == "seated"
    answers = await asyncio.gather(*(quick_seat(http, racer, small, big, 2, buy_in) for racer in racers))
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    assert sorted(a.json()["status"] for a in answers) == ["seated", "waiting"]
    winner = next(r for r, a in zip(racers, answers, strict=True) if a.json()["status"] == "seated")
    loser = next(r for r in racers if r != winner)
    assert sorted(await seated_players(http, table["id"])) == sorted([first, winner])
    assert [e["position"] for e in await entries(http, loser)] == [1]
    assert await ledger.player_balance(loser) == FUNDS
    assert await ledger.player_balance(winner) == FUNDS - buy_in


async def test_an_offer_taken_twice_at_once_seats_once(http: httpx.AsyncClient, ledger: Ledger) -> None:
    small, big = stakes()
    buy_in = 50 * big
    table = await new_table(http, small_blind=str(small), big_blind=str(big), seats=2, action_clock_s=1, time_bank_s=0)
    seated = await funded(ledger, [str(uuid.uuid4()) for _ in range(2)], FUNDS)
    for player in seated:
        assert (await quick_seat(http, player, small, big, 2, buy_in)).json()["status"] == "seated"
    [waiter] = await funded(ledger, [str(uuid.uuid4())], FUNDS)
    assert (await quick_seat(http, waiter, small, big, 2, buy_in)).json()["status"] == "waiting"
    # A leave while dealt in takes effect after the hand (the clock folds for the idle players).
    left = await http.delete(f"/api/v1/tables/{table['id']}/seats/me", headers=bearer(seated[0]))
    assert left.status_code == 200, left.text
    offer = await offer_of(http, waiter)
    accept = f"/api/v1/seat-offers/{offer['id']}/accept"
    answers = await asyncio.gather(*(http.post(accept, json={}, headers=bearer(waiter)) for _ in range(8)))
    assert sorted(a.status_code for a in answers) == [201] + [409] * 7, [a.text for a in answers]
    assert all(
        a.headers["content-type"].startswith("application/problem+json") for a in answers if a.status_code == 409
    )
    assert sorted(await seated_players(http, table["id"])) == sorted([seated[1], waiter])
    assert await ledger.player_balance(waiter) == FUNDS - buy_in


class Straddled:
    """The lobby's sessions, but the first statement of a ``begin()`` transaction that reads one player's rows
    (the player's seat or place in line at the stakes) is followed, before its result is used, by ``meanwhile``."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], meanwhile: Any) -> None:
        self.sessions = sessions
        self.meanwhile = meanwhile
        self.fired = False

    def __call__(self) -> AsyncSession:
        return self.sessions()

    def begin(self) -> Any:
        straddled = self
        transaction = self.sessions.begin()

        class Begin:
            async def __aenter__(self) -> AsyncSession:
                session = await transaction.__aenter__()
                execute = session.execute

                async def execute_then_meanwhile(statement: Any, *args: Any, **kwargs: Any) -> Any:
                    result = await execute(statement, *args, **kwargs)
                    if not straddled.fired and "player_id = :player_id" in str(statement):
                        straddled.fired = True
                        await straddled.meanwhile()
                    return result

                session.execute = execute_then_meanwhile  # type: ignore[method-assign]
                return session

            async def __aexit__(self, *exc: object) -> bool | None:
                return await transaction.__aexit__(*exc)

        return Begin()


@pytest.fixture
async def matching(settings: LobbySettings, client: AsyncTestClient[Any]) -> AsyncIterator[Matching]:
    """Quick seat in-process on the tests' loop, on the database of ``client``'s lobby (migrated by it)."""
    engine = db.create_engine(settings.database_url, pool_size=4)
    wallet = Wallet(settings.wallet_url, ServiceTokens.from_settings(settings))
    seating = Seating(settings, db.session_factory(engine), wallet)
    yield Matching(seating, Registry(None, settings.redis_key()), None, None, settings.redis_key())
    await wallet.aclose()
    await engine.dispose()


async def test_a_quick_seat_looking_while_the_same_players_sit_down_commits_finds_that_seat(
    client: AsyncTestClient[Any], matching: Matching, ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The interleaving behind a flake of the parallel test above. The first request holds a seat (an offer
    of the player's own, under the list's lock) and sits down with it outside that lock; a second, identical
    request looks at the player's standing in two statements while that sit-down commits (offer taken, seat
    buying in, at once). Looking for the seat before the entry, it saw no seat yet and no entry any more, held
    a second seat at the other table and bought in twice."""
    small, big = stakes()
    buy_in = 50 * big
    table = await new_table(client, small_blind=str(small), big_blind=str(big), seats=6)
    await new_table(client, small_blind=str(small), big_blind=str(big), seats=6)
    [player] = await funded(ledger, [str(uuid.uuid4())], FUNDS)
    player_id, key = uuid.UUID(player), ListKey(small, big, 0, 6)
    sessions = matching.sessions

    release = asyncio.Event()
    sit_down = matching.seating.sit_down

    async def sit_down_when_released(*args: Any, **kwargs: Any) -> Seat:
        await release.wait()
        return await sit_down(*args, **kwargs)

    monkeypatch.setattr(matching.seating, "sit_down", sit_down_when_released)
    first = asyncio.create_task(matching.quick_seat(player_id, key, buy_in))

    async def held() -> bool:
        async with sessions() as session:
            offers = select(func.count()).where(SeatOffer.player_id == player_id, SeatOffer.status == "open")
            return bool(await session.scalar(offers))

    await eventually(held, "the first request's hold")

    async def first_sits_down() -> None:
        release.set()
        await asyncio.wait_for(asyncio.shield(first), 60)

    straddled = Straddled(sessions, first_sits_down)
    monkeypatch.setattr(matching, "sessions", straddled)
    second = await matching.quick_seat(player_id, key, buy_in)
    assert straddled.fired
    assert (await first).status == "seated"
    assert (await first).seat is not None
    assert (await first).seat.table_id == uuid.UUID(table["id"])  # type: ignore[union-attr]
    assert second.status in ("seated", "offered"), second
    if second.seat is not None:
        assert second.seat.table_id == uuid.UUID(table["id"])
    async with sessions() as session:
        seats = select(Seat.table_id).where(Seat.player_id == player_id, Seat.status.in_(ACTIVE_SEAT))
        assert list(await session.scalars(seats)) == [uuid.UUID(table["id"])]
    assert await ledger.player_balance(player) == FUNDS - buy_in
    assert await entries(client, player) == []
