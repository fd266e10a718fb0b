"""``Tournaments``: the event service's use cases behind one object per app, and its background work.

Each method hands the request's session to one use case (a module of this package), which owns the
transaction: it commits once, or it is a saga whose steps each commit and which the reconciler finishes
(docs/adr/0006-tournament-engine.md, "Sagas" and "Use cases"). Money protocol: every wallet step has a
deterministic transfer id and is recorded *before* it is attempted; no wallet call is made under the
tournament's row lock or with its engine checked out.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tablium_event.clients.wallet import Wallet
from tablium_event.db import queries
from tablium_event.db.models import Purchase, Registration, TournamentRow
from tablium_event.domain.config import TournamentConfig
from tablium_event.domain.engine import Tournament
from tablium_event.services import (
    cancel,
    clock,
    clubs,
    engines,
    hands,
    prizes,
    purchases,
    reconciler,
    registration,
    snapshots,
    start,
    ties,
    views,
)
from tablium_event.services import director as director_cases
from tablium_event.services.cache import LiveEngines
from tablium_event.services.context import Context
from tablium_event.services.reconciler import Backoff
from tablium_event.settings import EventSettings
from tablium_kit.auth import Principal
from tablium_kit.db import Reader, Record

log = structlog.get_logger("tablium.event")


class Tournaments:
    """One per app: the use cases' context (settings, wallet, live engines), the clock and the reconciler."""

    def __init__(self, settings: EventSettings, wallet: Wallet) -> None:
        self.ctx = Context(settings, wallet, LiveEngines(settings.live_engines_max))
        self.backoff = Backoff()
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def settings(self) -> EventSettings:
        return self.ctx.settings

    @property
    def wallet(self) -> Wallet:
        return self.ctx.wallet

    @property
    def engines(self) -> LiveEngines:
        return self.ctx.engines

    # -- the director

    async def create(
        self,
        session: AsyncSession,
        *,
        name: str,
        config: TournamentConfig,
        director: Principal,
        club_id: uuid.UUID | None = None,
        union_wide: bool = False,
    ) -> TournamentRow:
        return await director_cases.create(
            self.ctx, session, name=name, config=config, director=director, club_id=club_id, union_wide=union_wide
        )

    async def check_director(self, session: AsyncSession, principal: Principal, tournament_id: uuid.UUID) -> None:
        """A platform director or admin, or the owner or a manager of the tournament's club (403 else)."""
        await clubs.check_director(session, principal, tournament_id)

    async def edit(
        self, session: AsyncSession, tournament_id: uuid.UUID, *, name: str | None, config: TournamentConfig | None
    ) -> TournamentRow:
        return await director_cases.edit(self.ctx, session, tournament_id, name=name, config=config)

    async def open_registration(self, session: AsyncSession, tournament_id: uuid.UUID) -> TournamentRow:
        return await director_cases.open_registration(self.ctx, session, tournament_id)

    async def command(
        self, session: AsyncSession, tournament_id: uuid.UUID, action: str, **kwargs: Any
    ) -> TournamentRow:
        return await director_cases.command(self.ctx, session, tournament_id, action, **kwargs)

    async def order_tie(self, session: AsyncSession, tournament_id: uuid.UUID, order: list[int]) -> TournamentRow:
        return await ties.order_tie(self.ctx, session, tournament_id, order)

    async def start(self, session: AsyncSession, tournament_id: uuid.UUID) -> TournamentRow:
        return await start.start(self.ctx, session, tournament_id)

    async def cancel(self, session: AsyncSession, tournament_id: uuid.UUID) -> TournamentRow:
        return await cancel.cancel(self.ctx, session, tournament_id)

    # -- players

    async def register(self, session: AsyncSession, tournament_id: uuid.UUID, player_id: uuid.UUID) -> Registration:
        return await registration.register(self.ctx, session, tournament_id, player_id)

    async def unregister(self, session: AsyncSession, tournament_id: uuid.UUID, player_id: uuid.UUID) -> Registration:
        return await registration.unregister(self.ctx, session, tournament_id, player_id)

    async def buy(
        self, session: AsyncSession, tournament_id: uuid.UUID, player_id: uuid.UUID, kind: str, request_id: uuid.UUID
    ) -> Purchase:
        return await purchases.buy(self.ctx, session, tournament_id, player_id, kind, request_id)

    # -- the tables (the lobby)

    async def hand_finished(
        self,
        session: AsyncSession,
        tournament_id: uuid.UUID,
        *,
        hand_id: str,
        table: int,
        stacks: dict[int, int],
        knockouts: dict[int, list[int]],
    ) -> dict[str, Any]:
        return await hands.hand_finished(
            self.ctx, session, tournament_id, hand_id=hand_id, table=table, stacks=stacks, knockouts=knockouts
        )

    # -- prizes

    async def pay_prizes(self, session: AsyncSession, tournament_id: uuid.UUID) -> None:
        await prizes.pay(self.ctx, session, tournament_id)

    async def check_pool(self, session: AsyncSession, tournament_id: uuid.UUID) -> bool | None:
        return await prizes.check_pool(self.ctx, session, tournament_id)

    # -- reads

    async def get(self, session: AsyncSession, tournament_id: uuid.UUID) -> TournamentRow:
        return await queries.get(session, tournament_id)

    async def read(self, reader: Reader, tournament_id: uuid.UUID) -> Record:
        return await queries.read(reader, tournament_id)

    async def newest(
        self, session: AsyncSession, limit: int, *, club_id: uuid.UUID | None = None
    ) -> Sequence[TournamentRow]:
        return await queries.newest(session, limit, club_id=club_id)

    async def view(self, session: AsyncSession, row: TournamentRow) -> views.TournamentView:
        return await views.tournament(self.ctx, session, row)

    async def registered(
        self, session: AsyncSession, tournament_id: uuid.UUID, *, offset: int, limit: int
    ) -> Sequence[Registration]:
        return await views.registered(session, tournament_id, offset=offset, limit=limit)

    async def engine(self, session: AsyncSession, tournament_id: uuid.UUID) -> Tournament | None:
        return await views.engine(self.ctx, session, tournament_id)

    async def engine_of(self, session: AsyncSession, row: TournamentRow) -> Tournament | None:
        return await engines.engine_of(self.ctx, session, row)

    # -- background: the clock and the reconciler; the pre-deploy snapshot

    async def tick_clock(self, session: AsyncSession) -> None:
        await clock.tick_due(self.ctx, session)

    async def reconcile(self, session: AsyncSession) -> None:
        await reconciler.reconcile(self.ctx, session, self.backoff)

    async def snapshot_running(self, session: AsyncSession) -> list[tuple[uuid.UUID, int]]:
        return await snapshots.snapshot_running(self.ctx, session)

    async def start_background(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        if self.settings.clock_interval_s > 0:
            self._tasks.append(asyncio.create_task(_loop(sessions, self.settings.clock_interval_s, self.tick_clock)))
        if self.settings.reconcile_interval_s > 0:
            self._tasks.append(asyncio.create_task(_loop(sessions, self.settings.reconcile_interval_s, self.reconcile)))

    async def stop_background(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()


async def _loop(
    sessions: async_sessionmaker[AsyncSession], interval: float, step: Callable[[AsyncSession], Awaitable[None]]
) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            async with sessions() as session:
                await step(session)
                await session.commit()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("background step failed", step=step.__name__)
