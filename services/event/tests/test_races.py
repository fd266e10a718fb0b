"""Races over real HTTP: the event service and the wallet each run as their own process (granian).

The in-process test client serialises too much to show these races (STYLE.md: "check for duplicates
under the lock; test concurrent identical requests over real HTTP against a running service").
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from test_service import (
    DIRECTOR,
    KID,
    REBUYS,
    SERVICE,
    SIGNING_KEY,
    Ledger,
    bearer,
    ints,
    report_hand,
    table_stacks,
    wallet_url,
    wire,
)

from tablium_kit.messaging.testing import AmqpNames
from tablium_kit.service_processes import serve_jwks, start_service

__all__ = ["wallet_url"]  # a fixture, shared with test_service

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("tablium_wallet") is None,
    reason="the wallet service (tablium_wallet) is not installed: these tests need the real wallet",
)


@pytest.fixture(scope="module")
def jwks_url() -> Iterator[str]:
    """The player service's part: the public key of the tests' tokens, as a JWKS document."""
    with serve_jwks(KID, SIGNING_KEY.public_key()) as url:
        yield url


@pytest.fixture(scope="module")
async def event_database(make_database: Callable[[str], Awaitable[str]]) -> str:
    return await make_database("event_races")


@pytest.fixture(scope="module")
async def event_url(event_database: str, amqp_names: AmqpNames, wallet_url: str, jwks_url: str) -> AsyncIterator[str]:
    env = {
        "TABLIUM_EVENT_DATABASE_URL": event_database,
        "TABLIUM_EVENT_WALLET_URL": wallet_url,
        "TABLIUM_EVENTS_EXCHANGE": amqp_names.exchange,
        "TABLIUM_ENVIRONMENT": "test",
        "TABLIUM_JWKS_URL": jwks_url,
        # The tests drive the clock; the reconciler must not finish what the requests race over.
        "TABLIUM_EVENT_CLOCK_INTERVAL_S": "0",
        "TABLIUM_EVENT_RECONCILE_INTERVAL_S": "0",
        "TABLIUM_EVENT_CONSUME_EVENTS": "false",
        # A tie's prizes wait for the director's ruling, which the requests race over.
        "TABLIUM_EVENT_TIE_REVIEW_S": "3600",
        "TABLIUM_LOG_LEVEL": "WARNING",
    }
    event = start_service("event", env)
    yield event.url
    event.stop()


@pytest.fixture
async def http(event_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=event_url, timeout=30) as client:
        yield client


@pytest.fixture
async def ledger(wallet_url: str) -> AsyncIterator[Ledger]:
    ledger = Ledger(wallet_url)
    yield ledger
    await ledger.aclose()


async def running_tournament(
    http: httpx.AsyncClient, ledger: Ledger, players: int, funds: int = 10_000, **config: Any
) -> tuple[str, dict[str, str]]:
    """A started tournament: its id and player id -> wallet account."""
    body = {"name": "Race", "buy_in": 1_000, "fee": 100, "seats_per_table": 6, "seed": 7, **config}
    response = await http.post("/api/v1/tournaments", json=wire(body), headers=DIRECTOR)
    assert response.status_code == 201, response.text
    tournament_id: str = response.json()["id"]
    response = await http.post(f"/api/v1/tournaments/{tournament_id}/open", headers=DIRECTOR)
    assert response.status_code == 200, response.text
    accounts: dict[str, str] = {}
    for _ in range(players):
        player = str(uuid.uuid4())
        accounts[player] = await ledger.fund(player, funds)
        response = await http.post(
            f"/api/v1/tournaments/{tournament_id}/registrations", headers=bearer(player, ["player"])
        )
        assert response.status_code == 201, response.text
    response = await http.post(f"/api/v1/tournaments/{tournament_id}/start", headers=DIRECTOR)
    assert response.status_code == 200, response.text
    return tournament_id, accounts


def service_headers() -> dict[str, str]:
    """The lobby's identity, minted per call: service tokens live two minutes, the suite longer."""
    return {"Authorization": f"Bearer {SERVICE.token('event')}"}


async def test_twenty_concurrent_replays_of_one_rebuy_charge_once_and_apply_once(
    http: httpx.AsyncClient, ledger: Ledger
) -> None:
    """Issue 10, item 1: a replay that read the purchase while ``holding`` re-ran the hold, overwrote
    ``posted`` with ``held``, and the engine's refusal of the second application refunded a posted
    transfer — the rebuy applied for free. Several rounds: the interleaving differs from run to run."""
    for _ in range(4):
        tournament_id, accounts = await running_tournament(http, ledger, 3, **REBUYS)
        rebuyer = next(iter(accounts))
        url = f"/api/v1/tournaments/{tournament_id}"
        request_id = str(uuid.uuid4())
        responses = await asyncio.gather(
            *(
                http.post(f"{url}/rebuys", json={"request_id": request_id}, headers=bearer(rebuyer, ["player"]))
                for _ in range(20)
            )
        )
        assert {r.status_code for r in responses} == {201}, [r.text for r in responses if r.status_code != 201]
        assert len({json.dumps(r.json(), sort_keys=True) for r in responses}) == 1, "one answer for one request"
        assert responses[0].json()["status"] == "posted"
        assert await ledger.available(accounts[rebuyer]) == 10_000 - 1_100 - 1_100, "charged exactly once"
        pool = await ledger.account(f"tournament:{tournament_id}", "prize_pool")
        lobby = (await http.get(url)).json()
        assert int(lobby["prize_pool"]) == 4_000, "the engine applied the rebuy exactly once"
        assert await ledger.available(pool) == int(lobby["prize_pool"]), "pool in the wallet = pool in the engine"
        [table] = (await http.get(f"{url}/tables")).json()
        stacks = {str(s["entry"]): s["stack"] for s in table["seats"] if s is not None}
        body = {"hand_id": "after-rebuy", "table": table["table"], "stacks": stacks}
        response = await http.post(f"/internal/v1{url[7:]}/hands", json=body, headers=service_headers())
        assert response.status_code == 200, response.text
        rebuys = [i for i in response.json()["instructions"] if i["kind"] == "set_stack" and i["reason"] == "rebuy"]
        assert len(rebuys) == 1, "the chips of one rebuy"


async def test_concurrent_identical_hand_reports_answer_once_and_never_freeze_the_tournament(
    http: httpx.AsyncClient, ledger: Ledger
) -> None:
    """Issue 10, item 6: the duplicate check ran before the lock, so copies of one report all applied
    the hand; the loser's commit failed, its ``finally`` read an expired ORM attribute and the engine
    was never checked in: the next request waited for it for ever."""
    for round_ in range(3):
        tournament_id, _ = await running_tournament(http, ledger, 3)
        url = f"/internal/v1/tournaments/{tournament_id}/hands"
        [table] = (await http.get(f"/api/v1/tournaments/{tournament_id}/tables")).json()
        stacks = {str(s["entry"]): s["stack"] for s in table["seats"] if s is not None}
        body = {"hand_id": f"h{round_}", "table": table["table"], "stacks": stacks}
        responses = await asyncio.wait_for(
            asyncio.gather(*(http.post(url, json=body, headers=service_headers()) for _ in range(5))), 30
        )
        ok = [r for r in responses if r.status_code == 200]
        assert ok, [r.text for r in responses]
        assert all(r.status_code in (200, 409) for r in responses), [r.text for r in responses]
        assert len({json.dumps(r.json(), sort_keys=True) for r in ok}) == 1, "every copy gets the same answer"
        # The tournament goes on: the next hand is applied at once.
        body = {**body, "hand_id": f"next{round_}"}
        response = await asyncio.wait_for(http.post(url, json=body, headers=service_headers()), 15)
        assert response.status_code == 200, response.text


async def test_parallel_identical_orderings_of_a_tie_take_effect_once_and_pay_once(
    http: httpx.AsyncClient, ledger: Ledger, event_database: str
) -> None:
    """The same ``POST /ties`` sent ten times at once: one ordering takes effect (one fact, one
    ``event.tie_ordered``, each tied player's prize paid once); every other copy is refused (409: the
    tie's prizes are final once ordered), none is a 5xx. Several rounds: the interleaving differs."""
    engine = create_async_engine(event_database)
    try:
        for round_ in range(3):
            # 4 entrants at one table, 3 paid (2,000 / 1,200 / 800 of 4,000): two equal stacks bust in one
            # hand and tie over 3rd-4th; their shared prizes wait for the ruling (``tie_review_s``).
            tournament_id, accounts = await running_tournament(
                http, ledger, 4, fee=0, seats_per_table=4, payout={"fixed_bp": [5_000, 3_000, 2_000]}
            )
            [(table, stacks)] = (await table_stacks(http, tournament_id)).items()  # type: ignore[arg-type]
            seated = list(stacks)
            low, high = sorted(seated[:2])
            stacks[seated[2]] += stacks[low] + stacks[high]
            stacks[low] = stacks[high] = 0
            await report_hand(http, tournament_id, f"tie{round_}", table, stacks)  # type: ignore[arg-type]
            entries = ints((await http.get(f"/api/v1/tournaments/{tournament_id}/entries")).json())
            account = {e["entry_id"]: accounts[e["player_id"]] for e in entries}
            before = {entry: await ledger.balance(account[entry]) for entry in (low, high)}

            url = f"/api/v1/tournaments/{tournament_id}/ties"
            responses = await asyncio.wait_for(
                asyncio.gather(*(http.post(url, json={"entries": [high, low]}, headers=DIRECTOR) for _ in range(10))),
                60,
            )
            statuses = sorted(r.status_code for r in responses)
            assert statuses == [200] + [409] * 9, [r.text for r in responses if r.status_code != 200]
            for refused in (r for r in responses if r.status_code == 409):
                assert refused.headers["content-type"].startswith("application/problem+json")
            after = {entry: await ledger.balance(account[entry]) for entry in (low, high)}
            assert {entry: after[entry] - before[entry] for entry in (low, high)} == {high: 800, low: 0}, "paid once"
            async with engine.connect() as connection:
                facts = await connection.scalar(
                    text("SELECT count(*) FROM tournament_facts WHERE tournament_id = :t AND kind = 'order_tie'"),
                    {"t": tournament_id},
                )
                ordered = await connection.scalar(
                    text("SELECT count(*) FROM outbox WHERE subject = :t AND type = 'event.tie_ordered'"),
                    {"t": tournament_id},
                )
                paid = (
                    await connection.execute(
                        text("SELECT entry_id, amount FROM prizes WHERE tournament_id = :t AND status = 'paid'"),
                        {"t": tournament_id},
                    )
                ).all()
            assert (facts, ordered) == (1, 1), "one ordering took effect"
            assert [(entry, int(amount)) for entry, amount in paid] == [(high, 800)]
    finally:
        await engine.dispose()
