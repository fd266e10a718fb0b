"""A request commits once: the write routes each commit their writes in one transaction, or are sagas.

Against a running app (its lifespan run, the real wallet process, Postgres), each request is made in a task
of its own through httpx's ASGI transport (the app runs in that task), and SQLAlchemy's connection events
count the COMMITs of transactions that wrote (an INSERT, UPDATE or DELETE) made by that task: the relay's
and other background commits are other tasks'. A read-only transaction committed before a wallet call is
not a write. A route that is a saga (docs/adr/0006-tournament-engine.md, "Sagas") commits once per step,
and the number of its steps is asserted too, so a new commit in any route fails here.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
import test_service
from sqlalchemy import event
from sqlalchemy.engine import Connection
from tablium_event.app import create_app
from tablium_event.settings import EventSettings
from test_service import DIRECTOR, KID, SERVICE, SIGNING_KEY, Ledger, bearer, wire

from tablium_kit.auth import StaticKeySource
from tablium_kit.messaging.testing import AmqpNames

wallet_url = test_service.wallet_url
ledger = test_service.ledger
pytestmark = test_service.pytestmark

WRITES = ("INSERT", "UPDATE", "DELETE")


class Commits:
    """COMMITs of transactions that wrote, per asyncio task (the request's task: its own count)."""

    def __init__(self) -> None:
        self.by_task: dict[int, int] = {}

    @staticmethod
    def _task() -> int | None:
        try:
            task = asyncio.current_task()
        except RuntimeError:
            return None
        return id(task) if task is not None else None

    def wrote(self, conn: Connection, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith(WRITES):
            conn.info["event_test_wrote"] = self._task()

    def committed(self, conn: Connection) -> None:
        task = conn.info.pop("event_test_wrote", None)
        if task is not None and task == self._task():
            self.by_task[task] = self.by_task.get(task, 0) + 1

    def rolled_back(self, conn: Connection) -> None:
        conn.info.pop("event_test_wrote", None)


Send = Callable[..., Awaitable[tuple[httpx.Response, int]]]


@pytest.fixture(scope="module")
async def send(
    make_database: Callable[[str], Awaitable[str]], amqp_names: AmqpNames, wallet_url: str
) -> AsyncIterator[Send]:
    settings: EventSettings = test_service.event_settings(await make_database("event_commits"), amqp_names, wallet_url)
    app = create_app(settings, key_source=StaticKeySource({KID: SIGNING_KEY.public_key()}))
    commits = Commits()
    # The lifespan is entered and left by one task of its own (the fixture's set-up and tear-down run in two).
    started, stopping = asyncio.Event(), asyncio.Event()

    async def run() -> None:
        async with app.lifespan():
            started.set()
            await stopping.wait()

    lifespan = asyncio.create_task(run())
    await asyncio.wait([lifespan, asyncio.create_task(started.wait())], return_when=asyncio.FIRST_COMPLETED)
    if lifespan.done():
        lifespan.result()  # the start failed: raise why
    engine = app.state.db_engine_instance.sync_engine
    event.listen(engine, "before_cursor_execute", commits.wrote)
    event.listen(engine, "commit", commits.committed)
    event.listen(engine, "rollback", commits.rolled_back)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://event.test", timeout=60) as client:

        async def send(method: str, url: str, **kwargs: Any) -> tuple[httpx.Response, int]:
            """The response, and the write commits made while the app served it (in its own task)."""

            async def one() -> tuple[httpx.Response, int]:
                response = await client.request(method, url, **kwargs)
                return response, commits.by_task.pop(Commits._task() or 0, 0)

            return await asyncio.create_task(one())

        yield send
    event.remove(engine, "before_cursor_execute", commits.wrote)
    event.remove(engine, "commit", commits.committed)
    event.remove(engine, "rollback", commits.rolled_back)
    stopping.set()
    await lifespan


async def test_the_counter_sees_every_commit_of_a_request(send: Send) -> None:
    """The measure itself: one write commit for a create, none for a read or a refusal."""
    body = wire({"name": "counted", "buy_in": 1_000, "fee": 100, "seats_per_table": 6, "seed": 1})
    response, commits = await send("POST", "/api/v1/tournaments", json=body, headers=DIRECTOR)
    assert response.status_code == 201, response.text
    assert commits == 1
    response, commits = await send("GET", f"/api/v1/tournaments/{response.json()['id']}")
    assert (response.status_code, commits) == (200, 0)
    response, commits = await send("POST", f"/api/v1/tournaments/{uuid.uuid4()}/start", headers=DIRECTOR)
    assert (response.status_code, commits) == (404, 0)


async def test_each_write_route_commits_once_or_once_per_saga_step(send: Send, ledger: Ledger) -> None:
    def player(subject: str) -> dict[str, str]:
        return bearer(subject, ["player"])

    async def once(method: str, url: str, expected: int = 1, **kwargs: Any) -> httpx.Response:
        response, commits = await send(method, url, **kwargs)
        assert response.status_code in (200, 201), response.text
        assert commits == expected, f"{method} {url}: {commits} write commits, expected {expected}"
        return response

    config = {
        "name": "commits",
        "buy_in": 1_000,
        "fee": 100,
        "seats_per_table": 6,
        "seed": 7,
        "levels": [{"small_blind": 10, "big_blind": 20, "duration_s": 600}, {"small_blind": 20, "big_blind": 40}],
        "breaks": [{"after_level": 1, "duration_s": 30}],
        "rebuy_until_level": 1,
        "rebuy_chips": 10_000,
    }
    # Plain requests: one commit each.
    created = await once("POST", "/api/v1/tournaments", json=wire(config), headers=DIRECTOR)
    url = f"/api/v1/tournaments/{created.json()['id']}"
    await once("PATCH", url, json={"name": "commits, edited"}, headers=DIRECTOR)
    await once("POST", f"{url}/open", headers=DIRECTOR)  # the pool account opened first, with nothing open
    players = [str(uuid.uuid4()) for _ in range(4)]
    for subject in players:
        await ledger.fund(subject, 10_000)
    # Saga "registration": the row (committed before any hold), then the hold's result.
    for subject in players:
        await once("POST", f"{url}/registrations", 2, headers=player(subject))
    # Saga "unregister": held -> voiding (under the row lock), then voided after the void.
    await once("DELETE", f"{url}/registrations/me", 2, headers=player(players[-1]))
    # Saga "start": starting, one chunk of posts (three entries), the engine built.
    await once("POST", f"{url}/start", 3, headers=DIRECTOR)
    for command, body in (("pause", None), ("resume", None), ("tolerance", {"tolerance": 2})):
        await once("POST", f"{url}/{command}", json=body, headers=DIRECTOR)
    tables = (await send("GET", f"{url}/tables"))[0].json()
    seated = [seat for seat in tables[0]["seats"] if seat is not None]
    await once("POST", f"{url}/seat-locks", json={"entry": seated[0]["entry"], "locked": True}, headers=DIRECTOR)
    # A hand report that pays no prize: its fact, answer and events in one commit.
    stacks = {str(seat["entry"]): seat["stack"] for seat in seated}
    report = {"hand_id": "h1", "table": tables[0]["table"], "stacks": stacks}
    internal = {"Authorization": f"Bearer {SERVICE.token('event')}"}
    await once("POST", f"/internal/v1/tournaments/{created.json()['id']}/hands", json=report, headers=internal)
    # Saga "purchase": the row, held, posting (the engine asked), posted (the engine applies it: its fact).
    rebuy = {"request_id": str(uuid.uuid4())}
    await once("POST", f"{url}/rebuys", 4, json=rebuy, headers=player(players[0]))
    # Saga "cancel": cancelling; per entry refunding then refunded (three), the purchase refunding then
    # refunded; the cancel fact.
    await once("POST", f"{url}/cancel", 1 + 3 * 2 + 2 + 1, headers=DIRECTOR)
