"""The money sagas step by step: concurrent drivers of one step, a slow wallet, a crash between steps.

Each purchase and registration is a state machine whose statuses only move forward by a compare-and-set
(``db/steps.py``); no wallet call is made under the tournament's row lock or with its engine checked out.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import msgspec
import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import select
from tablium_event.clients.wallet import PaymentRefused, Wallet, transfer_id
from tablium_event.db.models import Purchase, TournamentRow
from tablium_event.services import purchases
from tablium_event.services.prizes import POOL_MISMATCHES
from tablium_event.services.reconciler import RECONCILE_FAILURES, Backoff
from tablium_event.services.tournaments import Tournaments
from tablium_event.settings import EventSettings
from test_service import (
    DIRECTOR,
    REBUYS,
    Ledger,
    SessionFactory,
    client,
    ints,
    ledger,
    new_tournament,
    register_players,
    sessions,
    settings,
    wallet_url,
)

from tablium_kit.auth import ServiceTokens
from tablium_kit.errors import Conflict

__all__ = ["client", "ledger", "sessions", "settings", "wallet_url"]  # fixtures, shared with test_service


class WalletTransport(httpx.AsyncBaseTransport):
    """The real wallet, with a delay or a failure injected into the requests that ``match``."""

    def __init__(
        self,
        match: Callable[[httpx.Request], bool],
        *,
        delay_s: float = 0.0,
        fail: bool = False,
        lose_answer: bool = False,
        times: int = 1,
    ) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.match, self.delay_s, self.fail, self.lose_answer, self.times = match, delay_s, fail, lose_answer, times

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.times > 0 and self.match(request):
            self.times -= 1
            await asyncio.sleep(self.delay_s)
            if self.fail:
                raise httpx.ConnectError("injected: the process died here")
            if self.lose_answer:  # the wallet did it; the caller never hears
                await self.inner.handle_async_request(request)
                raise httpx.ReadError("injected: the answer was lost")
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def is_hold(request: httpx.Request) -> bool:
    return request.url.path == "/internal/v1/transfers" and b'"pending":true' in request.content


def is_post(request: httpx.Request) -> bool:
    return request.url.path.endswith("/post")


@pytest.fixture
async def service_with(settings: EventSettings) -> AsyncIterator[Callable[..., Tournaments]]:
    """Another instance of the service (as another process would be) with its own wallet transport."""
    made: list[Tournaments] = []

    def make(transport: httpx.AsyncBaseTransport | None = None, **overrides: Any) -> Tournaments:
        service = Tournaments(
            msgspec.structs.replace(settings, **overrides),
            Wallet(settings.wallet_url, ServiceTokens.from_settings(settings), transport=transport),
        )
        made.append(service)
        return service

    yield make
    for service in made:
        await service.wallet.aclose()


async def rebuy_tournament(client: AsyncTestClient, ledger: Ledger) -> tuple[uuid.UUID, dict[str, str]]:
    tournament_id = await new_tournament(client, **REBUYS)
    players = await register_players(client, ledger, tournament_id, 3)
    response = await client.post(f"/api/v1/tournaments/{tournament_id}/start", headers=DIRECTOR)
    assert response.status_code == 200, response.text
    return uuid.UUID(tournament_id), players


async def assert_one_rebuy(
    client: AsyncTestClient, ledger: Ledger, tournament_id: uuid.UUID, players: dict[str, str], rebuyer: str
) -> None:
    pool = await ledger.account(f"tournament:{tournament_id}", "prize_pool")
    lobby = (await client.get(f"/api/v1/tournaments/{tournament_id}")).json()
    assert int(lobby["prize_pool"]) == 4_000, "the engine applied one rebuy"
    assert await ledger.available(pool) == 4_000, "pool in the wallet = pool in the engine"
    for player, account in players.items():
        assert await ledger.available(account) == 5_000 - 1_100 - (1_100 if player == rebuyer else 0)


async def test_a_replay_whose_hold_answers_late_never_undoes_a_later_step(
    client: AsyncTestClient, ledger: Ledger, sessions: SessionFactory, service_with: Callable[..., Tournaments]
) -> None:
    """The issue's free rebuy, step by step: a replay reads ``holding`` and its hold answers only after
    another copy has posted and applied the rebuy. Its late answer must not set ``held`` over ``posted``
    (which made the next step refund the posted transfer while the engine kept the rebuy)."""
    tournament_id, players = await rebuy_tournament(client, ledger)
    rebuyer = next(iter(players))
    slow = service_with(WalletTransport(is_hold, delay_s=1.0))
    fast = service_with()
    request_id = uuid.uuid4()
    async with sessions() as first, sessions() as second:
        late = asyncio.create_task(slow.buy(first, tournament_id, uuid.UUID(rebuyer), "rebuy", request_id))
        tid = transfer_id(tournament_id, "rebuy", rebuyer, request_id)
        while await second.scalar(select(Purchase.id).where(Purchase.transfer_id == tid)) is None:
            await second.commit()
            await asyncio.sleep(0.02)
        await second.commit()
        await asyncio.sleep(0.1)  # the row is written, its hold is on its way (for a second)
        done = await fast.buy(second, tournament_id, uuid.UUID(rebuyer), "rebuy", request_id)
        assert done.status == "posted"
        assert (await late).status == "posted"
    await assert_one_rebuy(client, ledger, tournament_id, players, rebuyer)


async def test_every_step_of_a_purchase_driven_by_several_callers_at_once_moves_money_once(
    client: AsyncTestClient, ledger: Ledger, sessions: SessionFactory, service_with: Callable[..., Tournaments]
) -> None:
    """Three instances drive one purchase from ``holding`` at once, each with its own timing, so every
    pair of steps (hold, decide, post and apply) meets another copy of itself or of the next step."""
    for delays in ((0.0, 0.0, 0.0), (0.2, 0.0, 0.1), (0.0, 0.3, 0.15)):
        tournament_id, players = await rebuy_tournament(client, ledger)
        rebuyer = next(iter(players))
        drivers = [
            service_with(WalletTransport(lambda r: is_hold(r) or is_post(r), delay_s=delay, times=2))
            for delay in delays
        ]
        [table] = ints((await client.get(f"/api/v1/tournaments/{tournament_id}/tables")).json())
        entry = next(s["entry"] for s in table["seats"] if s is not None and s["player"] == rebuyer)
        async with sessions() as session:
            # As ``buy`` leaves it once the row is committed (its own driver then races the others).
            purchase = Purchase(
                transfer_id=transfer_id(tournament_id, "rebuy", rebuyer, uuid.uuid4()),
                tournament_id=tournament_id,
                player_id=uuid.UUID(rebuyer),
                entry_id=entry,
                kind="rebuy",
                amount=1_100,
                status="holding",
            )
            session.add(purchase)
            await session.commit()
        purchase_id = purchase.id

        async def drive(service: Tournaments, purchase_id: uuid.UUID = purchase_id) -> str:
            async with sessions() as session:
                return (await purchases.drive(service.ctx, session, purchase_id)).status

        assert await asyncio.gather(*(drive(d) for d in drivers)) == ["posted"] * 3
        await assert_one_rebuy(client, ledger, tournament_id, players, rebuyer)


async def test_a_slow_wallet_does_not_stall_the_hand_reports_of_the_tournament(
    client: AsyncTestClient, ledger: Ledger, sessions: SessionFactory, service_with: Callable[..., Tournaments]
) -> None:
    """Issue 10, item 8: a rebuy's post used to wait on the wallet with the tournament's row locked and
    its engine checked out, so every hand report of the tournament waited too."""
    tournament_id, players = await rebuy_tournament(client, ledger)
    rebuyer = next(iter(players))
    slow = service_with(WalletTransport(is_post, delay_s=3.0))
    [table] = ints((await client.get(f"/api/v1/tournaments/{tournament_id}/tables")).json())
    async with sessions() as session:
        buying = asyncio.create_task(slow.buy(session, tournament_id, uuid.UUID(rebuyer), "rebuy", uuid.uuid4()))
        await asyncio.sleep(0.5)  # the post is on its way
        stacks = {str(s["entry"]): s["stack"] for s in table["seats"] if s is not None}
        lobby = service_with()  # in this event loop, as the slow one: no test client between them
        async with sessions() as other:
            await asyncio.wait_for(
                lobby.hand_finished(
                    other,
                    tournament_id,
                    hand_id="meanwhile",
                    table=table["table"],
                    stacks={int(entry): stack for entry, stack in stacks.items()},
                    knockouts={},
                ),
                10,
            )
        assert not buying.done(), "the hand report went through while the wallet call was on its way"
        assert (await buying).status == "posted"
    await assert_one_rebuy(client, ledger, tournament_id, players, rebuyer)


async def test_a_purchase_cut_short_between_its_post_and_its_fact_is_finished_by_the_reconciler(
    client: AsyncTestClient, ledger: Ledger, sessions: SessionFactory, service_with: Callable[..., Tournaments]
) -> None:
    """The process dies on the post (an exception injected): the purchase stays ``posting``; the
    reconciler's ``purchases.drive`` posts it (once) and has the engine apply it."""
    tournament_id, players = await rebuy_tournament(client, ledger)
    rebuyer = next(iter(players))
    dying = service_with(WalletTransport(is_post, fail=True, times=10))
    async with sessions() as session:
        with pytest.raises(httpx.ConnectError):
            await dying.buy(session, tournament_id, uuid.UUID(rebuyer), "rebuy", uuid.uuid4())
    async with sessions() as session:
        [status] = (await session.scalars(select(Purchase.status).where(Purchase.tournament_id == tournament_id))).all()
    assert status == "posting"
    reconciler = service_with(late_entry_grace_s=0.0)
    async with sessions() as session:
        await reconciler.reconcile(session)
        await session.commit()
        [status] = (await session.scalars(select(Purchase.status).where(Purchase.tournament_id == tournament_id))).all()
    assert status == "posted"
    await assert_one_rebuy(client, ledger, tournament_id, players, rebuyer)


async def test_a_cancel_racing_purchases_gives_every_unit_back(
    client: AsyncTestClient, ledger: Ledger, sessions: SessionFactory, service_with: Callable[..., Tournaments]
) -> None:
    """A cancel and purchases in every step at once: each purchase ends voided or refunded, and every
    player has all their money back."""
    tournament_id, players = await rebuy_tournament(client, ledger)
    buyers = [service_with(WalletTransport(lambda r: is_hold(r) or is_post(r), delay_s=0.2 * i)) for i in range(3)]

    async def buy(service: Tournaments, player: str) -> None:
        async with sessions() as session:
            # Refused (409) once the cancel has begun, or bought before it: the cancel gives it back.
            with contextlib.suppress(Conflict, PaymentRefused):
                await service.buy(session, tournament_id, uuid.UUID(player), "rebuy", uuid.uuid4())

    director = service_with()

    async def cancel() -> None:
        # Another instance in this event loop: the test client would block the loop while it waits for a lock.
        await asyncio.sleep(0.1)
        async with sessions() as session:
            await director.cancel(session, tournament_id)

    await asyncio.gather(cancel(), *(buy(s, p) for s, p in zip(buyers, players, strict=True)))
    reconciler = service_with(late_entry_grace_s=0.0)
    async with sessions() as session:
        await reconciler.reconcile(session)
        await session.commit()
        statuses = set(
            (await session.scalars(select(Purchase.status).where(Purchase.tournament_id == tournament_id))).all()
        )
    assert statuses <= {"voided", "refunded"}, statuses
    for account in players.values():
        assert await ledger.available(account) == 5_000
    assert (await client.get(f"/api/v1/tournaments/{tournament_id}")).json()["status"] == "cancelled"


async def test_one_poisoned_item_fails_alone_and_the_reconciler_finishes_the_others(
    client: AsyncTestClient, ledger: Ledger, sessions: SessionFactory, service_with: Callable[..., Tournaments]
) -> None:
    """Issue 10, item 4: one item that raised (here a purchase of amount 0, which the wallet refuses
    with a 400) ended every pass, so owed prizes, late entries and cancels after it were never reached."""
    tournament_id, players = await rebuy_tournament(client, ledger)
    rebuyer, poisoner, _ = players
    [table] = ints((await client.get(f"/api/v1/tournaments/{tournament_id}/tables")).json())
    entries = {s["player"]: s["entry"] for s in table["seats"] if s is not None}
    async with sessions() as session:
        for player, amount in ((poisoner, 0), (rebuyer, 1_100)):
            session.add(
                Purchase(
                    transfer_id=transfer_id(tournament_id, "rebuy", player, uuid.uuid4()),
                    tournament_id=tournament_id,
                    player_id=uuid.UUID(player),
                    entry_id=entries[player],
                    kind="rebuy",
                    amount=amount,
                    status="holding",
                )
            )
        await session.commit()
    # A cancel cut short: its step comes after the purchases' in each pass.
    cancelled = await new_tournament(client)
    cancelled_players = await register_players(client, ledger, cancelled, 2)
    async with sessions() as session:
        await session.execute(
            TournamentRow.__table__.update().where(TournamentRow.id == uuid.UUID(cancelled)).values(status="cancelling")
        )
        await session.commit()

    failures = RECONCILE_FAILURES.labels(step="purchase")
    before = failures._value.get()
    reconciler = service_with(late_entry_grace_s=0.0)
    # The reconciler's clock stands still: however slow this machine, the second pass comes before the retry.
    reconciler.backoff = Backoff(clock=lambda: 0.0)
    for _ in range(2):  # the second pass does not retry the poisoned item yet: it is backing off
        async with sessions() as session:
            await reconciler.reconcile(session)
    assert failures._value.get() == before + 1, "counted once; the second pass left it alone (backoff)"
    async with sessions() as session:
        statuses = dict(
            (
                await session.execute(
                    select(Purchase.player_id, Purchase.status).where(Purchase.tournament_id == tournament_id)
                )
            ).all()
        )
    assert statuses == {uuid.UUID(poisoner): "holding", uuid.UUID(rebuyer): "posted"}
    await assert_one_rebuy(client, ledger, tournament_id, players, rebuyer)
    assert (await client.get(f"/api/v1/tournaments/{cancelled}")).json()["status"] == "cancelled"
    for account in cancelled_players.values():
        assert await ledger.available(account) == 5_000


async def test_a_late_entry_on_a_slow_wallet_stalls_no_hand_and_a_crash_is_finished_by_the_reconciler(
    client: AsyncTestClient, ledger: Ledger, sessions: SessionFactory, service_with: Callable[..., Tournaments]
) -> None:
    """Issue 10, item 8, for late registration: the post of a late entry's hold used to run with the row
    locked and the engine checked out. Now a hand report goes through while it is on its way; and a late
    entry whose process died on the post is seated by the reconciler (posted once)."""
    tournament_id = uuid.UUID(
        await new_tournament(
            client, fee=0, late_reg_until_level=2, levels=[{"small_blind": 10, "big_blind": 20, "duration_s": 3600}]
        )
    )
    await register_players(client, ledger, str(tournament_id), 2)
    response = await client.post(f"/api/v1/tournaments/{tournament_id}/start", headers=DIRECTOR)
    assert response.status_code == 200, response.text
    [table] = ints((await client.get(f"/api/v1/tournaments/{tournament_id}/tables")).json())
    stacks = {s["entry"]: s["stack"] for s in table["seats"] if s is not None}
    late, dying = uuid.uuid4(), uuid.uuid4()
    accounts = {player: await ledger.fund(str(player), 5_000) for player in (late, dying)}
    slow = service_with(WalletTransport(is_post, delay_s=3.0))
    lobby = service_with()
    async with sessions() as session, sessions() as other:
        registering = asyncio.create_task(slow.register(session, tournament_id, late))
        await asyncio.sleep(0.7)  # the hold is taken, the post on its way
        await asyncio.wait_for(
            lobby.hand_finished(
                other, tournament_id, hand_id="meanwhile", table=table["table"], stacks=stacks, knockouts={}
            ),
            10,
        )
        assert not registering.done(), "the hand report went through while the wallet call was on its way"
        reg = await registering
        assert (reg.status, reg.entry_id) == ("posted", 3)
    crashing = service_with(WalletTransport(is_post, fail=True, times=10))
    async with sessions() as session:
        with pytest.raises(httpx.ConnectError):
            await crashing.register(session, tournament_id, dying)
    reconciler = service_with(late_entry_grace_s=0.0)
    async with sessions() as session:
        await reconciler.reconcile(session)
    lobby_view = ints((await client.get(f"/api/v1/tournaments/{tournament_id}")).json())
    assert (lobby_view["entries"], lobby_view["prize_pool"]) == (4, 4_000)
    for account in accounts.values():
        assert await ledger.available(account) == 4_000
    pool = await ledger.account(f"tournament:{tournament_id}", "prize_pool")
    assert await ledger.available(pool) == 4_000


async def test_the_reconciler_checks_the_pool_in_the_wallet_against_the_engine(
    client: AsyncTestClient, ledger: Ledger, sessions: SessionFactory, service_with: Callable[..., Tournaments]
) -> None:
    """Issue 10, item 1's invariant: pool in the wallet = pool by the engine's facts. It holds after
    rebuys, a bust with its bounty and a guarantee topped up; one unit moved into the pool behind the
    service's back is a mismatch, logged and counted, and the reconciler goes on."""
    tournament_id = uuid.UUID(await new_tournament(client, **REBUYS, bounty=200, guarantee=6_000))
    players = await register_players(client, ledger, str(tournament_id), 3)
    response = await client.post(f"/api/v1/tournaments/{tournament_id}/start", headers=DIRECTOR)
    assert response.status_code == 200, response.text
    checker = service_with(late_entry_grace_s=0.0)
    buyer = next(iter(players))
    async with sessions() as session:
        await checker.buy(session, tournament_id, uuid.UUID(buyer), "rebuy", uuid.uuid4())
    [table] = ints((await client.get(f"/api/v1/tournaments/{tournament_id}/tables")).json())
    seats = [s for s in table["seats"] if s is not None]
    busted, hunter = seats[1], seats[2]
    stacks = {s["entry"]: s["stack"] for s in seats}
    stacks[hunter["entry"]] += stacks[busted["entry"]]
    stacks[busted["entry"]] = 0
    async with sessions() as session:
        await checker.hand_finished(
            session,
            tournament_id,
            hand_id="bust",
            table=table["table"],
            stacks=stacks,
            knockouts={busted["entry"]: [hunter["entry"]]},
        )
    async with sessions() as session:
        assert await checker.check_pool(session, tournament_id) is True
    mismatches = POOL_MISMATCHES._value.get()
    house = await ledger.account("house", "house_adjustments")
    pool = await ledger.account(f"tournament:{tournament_id}", "prize_pool")
    body = {
        "id": str(uuid.uuid4()),
        "debit_account_id": house,
        "credit_account_id": pool,
        "amount": "1",
        "asset": "USDT",
        "code": "test_funding",
    }
    response = await ledger.http.post("/internal/v1/transfers", json=body, headers=ledger.headers())
    assert response.status_code in (200, 201), response.text
    async with sessions() as session:
        assert await checker.check_pool(session, tournament_id) is False
        await checker.reconcile(session)
    assert POOL_MISMATCHES._value.get() == mismatches + 2, "each check counts the mismatch"


async def test_every_step_of_a_late_entry_driven_by_several_reconcilers_at_once_seats_it_once(
    client: AsyncTestClient, ledger: Ledger, sessions: SessionFactory, service_with: Callable[..., Tournaments]
) -> None:
    """A late registration whose hold went through but whose answer was lost stays ``holding``; three
    reconcilers (three processes) then finish it at once, each with its own timing, so each step (hold,
    decide, post, seat) meets another copy of itself: one entry seated, one charge."""
    tournament_id = uuid.UUID(
        await new_tournament(
            client, fee=0, late_reg_until_level=2, levels=[{"small_blind": 10, "big_blind": 20, "duration_s": 3600}]
        )
    )
    await register_players(client, ledger, str(tournament_id), 2)
    response = await client.post(f"/api/v1/tournaments/{tournament_id}/start", headers=DIRECTOR)
    assert response.status_code == 200, response.text
    late = uuid.uuid4()
    account = await ledger.fund(str(late), 5_000)
    losing = service_with(WalletTransport(is_hold, lose_answer=True, times=10))
    async with sessions() as session:
        with pytest.raises(httpx.ReadError):
            await losing.register(session, tournament_id, late)
    reconcilers = [
        service_with(
            WalletTransport(lambda r: is_hold(r) or is_post(r), delay_s=delay, times=2), late_entry_grace_s=0.0
        )
        for delay in (0.0, 0.15, 0.3)
    ]

    async def reconcile(service: Tournaments) -> None:
        async with sessions() as session:
            await service.reconcile(session)

    for _ in range(2):  # one pass finishes it; the second must find nothing left to do
        await asyncio.gather(*(reconcile(r) for r in reconcilers))
    lobby = ints((await client.get(f"/api/v1/tournaments/{tournament_id}")).json())
    assert (lobby["entries"], lobby["prize_pool"]) == (3, 3_000)
    assert await ledger.available(account) == 4_000, "charged once"
    pool = await ledger.account(f"tournament:{tournament_id}", "prize_pool")
    assert await ledger.available(pool) == 3_000
    async with sessions() as session:
        assert await reconcilers[0].check_pool(session, tournament_id) is True
