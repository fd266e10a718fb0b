"""Statements per player, agent, club and union, per period, as JSON and CSV; a player's tiers."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import msgspec
from litestar import Controller, Response, get
from litestar.datastructures import State
from litestar.params import FromPath, FromQuery

from tablium_kit.auth import BEARER, caller
from tablium_kit.deps import DbSession
from tablium_kit.errors import InvalidInput
from tablium_kit.money import Amount, format_amount
from tablium_rakeback.domain.periods import ANCHOR, Period, period_of
from tablium_rakeback.services import statements
from tablium_rakeback.settings import RakebackSettings, period_length

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

CSV = "text/csv"
LATEST = datetime(9998, 12, 1, tzinfo=UTC)


class StatementLine(msgspec.Struct, kw_only=True):
    player_id: uuid.UUID
    asset: str
    hands: int
    rake: Amount
    amount: Amount
    paid: Amount


class StatementTotal(msgspec.Struct, kw_only=True):
    asset: str
    rake: Amount
    amount: Amount
    paid: Amount


class StatementOut(msgspec.Struct, kw_only=True):
    scope: str
    id: uuid.UUID
    period_start: datetime
    period_end: datetime
    lines: list[StatementLine]
    totals: list[StatementTotal]


class TierOut(msgspec.Struct, kw_only=True):
    asset: str
    tier: str
    bps: int
    rolling_rake: Amount


def _period(state: State, at: datetime | None) -> Period:
    settings: RakebackSettings = state.settings
    if at is not None and at.tzinfo is None:
        at = at.replace(tzinfo=UTC)  # a moment without a zone is UTC
    if at is not None and not ANCHOR <= at <= LATEST:
        raise InvalidInput("at must lie between 1970-01-05 and 9998-12-01")
    return period_of(at or datetime.now(UTC), period_length(settings))


async def _lines(
    db_session: AsyncSession, state: State, level: str, subject: uuid.UUID, at: datetime | None
) -> tuple[Period, list[statements.Line]]:
    principal = caller()
    period = _period(state, at)
    found = await statements.read(
        db_session, level, subject, period, caller=uuid.UUID(principal.subject), admin="admin" in principal.roles
    )
    return period, found


def _out(scope: str, subject: uuid.UUID, period: Period, items: list[statements.Line]) -> StatementOut:
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for line in items:
        total = totals[line.asset]
        total[0] += line.rake
        total[1] += line.amount
        total[2] += line.paid
    return StatementOut(
        scope=scope,
        id=subject,
        period_start=period.start,
        period_end=period.end,
        lines=[
            StatementLine(
                player_id=line.player_id,
                asset=line.asset,
                hands=line.hands,
                rake=format_amount(line.rake),
                amount=format_amount(line.amount),
                paid=format_amount(line.paid),
            )
            for line in items
        ],
        totals=[
            StatementTotal(asset=asset, rake=format_amount(r), amount=format_amount(a), paid=format_amount(p))
            for asset, (r, a, p) in sorted(totals.items())
        ],
    )


class StatementController(Controller):
    path = "/api/v1/rakeback"
    tags = ["rakeback"]
    security = BEARER

    @get(
        "/statements/{level:str}/{subject:uuid}",
        summary="A statement for the period containing `at` (default now): players, agents, clubs or unions",
    )
    async def statement(
        self,
        level: FromPath[str],
        subject: FromPath[uuid.UUID],
        db_session: DbSession,
        state: State,
        at: FromQuery[datetime | None] = None,
    ) -> StatementOut:
        found, items = await _lines(db_session, state, level, subject, at)
        return _out(level, subject, found, items)

    @get(
        "/statements/{level:str}/{subject:uuid}/csv",
        summary="The same statement as CSV",
        media_type=CSV,
    )
    async def statement_csv(
        self,
        level: FromPath[str],
        subject: FromPath[uuid.UUID],
        db_session: DbSession,
        state: State,
        at: FromQuery[datetime | None] = None,
    ) -> Response[str]:
        found, items = await _lines(db_session, state, level, subject, at)
        return Response(statements.to_csv(level, subject, found, items), media_type=CSV)

    @get("/tiers/me", summary="My tier per asset over the rolling window (players outside clubs)")
    async def my_tiers(self, db_session: DbSession, state: State) -> list[TierOut]:
        settings: RakebackSettings = state.settings
        found = await statements.current_tiers(
            db_session,
            uuid.UUID(caller().subject),
            settings.tiers,
            timedelta(days=settings.tier_window_days),
            datetime.now(UTC),
        )
        return [
            TierOut(asset=t.asset, tier=t.standing.name, bps=t.standing.bps, rolling_rake=format_amount(t.rolling_rake))
            for t in found
        ]
