"""Statements (what a receiver accrued in a period, per paying player and asset) and who may read them.

Roles come from this service's own projection of the club service's facts (``members``): no call to
the club service. A player reads their own; an agent its own and those of its subtree (the members it
recruited, and theirs, down the ``agent_id`` links); a club's owner or manager their club's, and any
member's or agent's of their club; a union's statement, the owners and managers of its clubs; an
admin, everything. Only memberships in force count: a player who left a club (or a club that left a
union) is no longer anyone's there to read, since a player's statement holds all their rakeback, from
every club and every public table.
"""

from __future__ import annotations

import csv
import io
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from tablium_kit.errors import Forbidden, InvalidInput
from tablium_rakeback.db.models import REFUNDED, Member, Rake, UnionClub
from tablium_rakeback.domain.periods import Period
from tablium_rakeback.domain.tiers import Tier, TierStanding, tier_for

MANAGING = ("owner", "manager")
# Deeper agent trees than this are not followed (the club service refuses cycles; this bounds a bad one).
MAX_AGENT_DEPTH = 64


@dataclass(frozen=True)
class Line:
    player_id: uuid.UUID
    asset: str
    hands: int
    rake: int  # what that player paid in those hands
    amount: int  # this receiver's part of it
    paid: int  # of which paid out (the wallet posted it)


# The totals of the receiver's period, paid and unpaid rows together (a line's ``paid``: those whose
# payout the wallet posted). Keyed on the hands' period, so ``period_start`` in the period is the hands in it.
_LINES = text(
    "SELECT t.player_id, t.asset, sum(t.hands), sum(t.rake), sum(t.amount), "
    "coalesce(sum(t.amount) FILTER (WHERE p.status = 'completed'), 0) "
    "FROM accrual_totals t LEFT JOIN payouts p ON p.payout_id = t.payout_id "
    "WHERE t.kind = :kind AND t.beneficiary = :beneficiary AND t.period_start >= :start AND t.period_start < :end "
    "GROUP BY t.player_id, t.asset ORDER BY t.player_id, t.asset"
)


async def lines(session: AsyncSession, kind: str, beneficiary: uuid.UUID, period: Period) -> list[Line]:
    rows = await session.execute(
        _LINES, {"kind": kind, "beneficiary": str(beneficiary), "start": period.start, "end": period.end}
    )
    return [Line(r[0], r[1], int(r[2]), int(r[3]), int(r[4]), int(r[5])) for r in rows]


def to_csv(scope: str, subject: uuid.UUID, period: Period, items: list[Line]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        ["period_start", "period_end", "scope", "id", "player_id", "asset", "hands", "rake", "amount", "paid"]
    )
    for line in items:
        writer.writerow(
            [
                period.start.isoformat(),
                period.end.isoformat(),
                scope,
                str(subject),
                str(line.player_id),
                line.asset,
                line.hands,
                line.rake,
                line.amount,
                line.paid,
            ]
        )
    return out.getvalue()


async def _managed_clubs(session: AsyncSession, caller: uuid.UUID) -> set[uuid.UUID]:
    query = select(Member.club_id).where(Member.player_id == caller, Member.active, Member.role.in_(MANAGING))
    return set((await session.scalars(query)).all())


async def _is_upline(session: AsyncSession, caller: uuid.UUID, target: uuid.UUID) -> bool:
    """Whether ``caller`` recruited ``target``, directly or through its sub-agents, in some club."""
    for member in (await session.scalars(select(Member).where(Member.player_id == target, Member.active))).all():
        agent, seen = member.agent_id, 0
        while agent is not None and seen < MAX_AGENT_DEPTH:
            if agent == caller:
                return True
            agent = await session.scalar(
                select(Member.agent_id).where(Member.club_id == member.club_id, Member.player_id == agent)
            )
            seen += 1
    return False


async def check_player_access(session: AsyncSession, caller: uuid.UUID, admin: bool, target: uuid.UUID) -> None:
    """A player's or an agent's statement: themselves, their upline agents, their clubs' managers."""
    if admin or caller == target:
        return
    managed = await _managed_clubs(session, caller)
    if managed:
        query = select(Member.club_id).where(Member.player_id == target, Member.active)
        clubs = set((await session.scalars(query)).all())
        if managed & clubs:
            return
    if await _is_upline(session, caller, target):
        return
    raise Forbidden("you may read your own statement, your subtree's, or your club's members'")


async def check_club_access(session: AsyncSession, caller: uuid.UUID, admin: bool, club_id: uuid.UUID) -> None:
    if admin or club_id in await _managed_clubs(session, caller):
        return
    raise Forbidden("a club's statement is for its owner and managers")


async def check_union_access(session: AsyncSession, caller: uuid.UUID, admin: bool, union_id: uuid.UUID) -> None:
    if admin:
        return
    query = select(UnionClub.club_id).where(UnionClub.union_id == union_id, UnionClub.active)
    clubs = set((await session.scalars(query)).all())
    if clubs & await _managed_clubs(session, caller):
        return
    raise Forbidden("a union's statement is for the owners and managers of its clubs")


@dataclass(frozen=True)
class CurrentTier:
    asset: str
    standing: TierStanding
    rolling_rake: int


async def current_tiers(
    session: AsyncSession, player_id: uuid.UUID, tiers: dict[str, list[Tier]], window: timedelta, now: datetime
) -> list[CurrentTier]:
    """The player's tier per asset over the window ending now (what the next payout would use so far)."""
    rows = await session.execute(
        select(Rake.asset, func.sum(Rake.rake))
        .where(
            Rake.player_id == player_id,
            Rake.club_id.is_(None),
            Rake.hand_time >= now - window,
            Rake.status != REFUNDED,  # a fee given back is no volume
        )
        .group_by(Rake.asset)
        .order_by(Rake.asset)
    )
    totals = {asset: int(total) for asset, total in rows}
    return [
        CurrentTier(asset, tier_for(totals.get(asset, 0), table), totals.get(asset, 0))
        for asset, table in sorted(tiers.items())
    ]


# What each level of statement reads: the receiver kind of its accruals, and who may read it.
LEVELS = {
    "players": ("player", check_player_access),
    "agents": ("agent", check_player_access),
    "clubs": ("club", check_club_access),
    "unions": ("union", check_union_access),
}


async def read(
    session: AsyncSession, level: str, subject: uuid.UUID, period: Period, *, caller: uuid.UUID, admin: bool
) -> list[Line]:
    """The lines of ``level``'s statement of ``subject``, once ``caller`` is found allowed to read it."""
    if level not in LEVELS:
        raise InvalidInput(f"level must be one of {', '.join(LEVELS)}")
    kind, check = LEVELS[level]
    await check(session, caller, admin, subject)
    return await lines(session, kind, subject, period)
