"""Recording hands and the club service's facts; each may re-evaluate rakes (see ``accrual``).

Club facts carry the club's (or union's) ``seq``: a projection row keeps the newest, so an older fact
arriving late changes nothing. Deal versions are all kept (a hand accrues under the one in force at its
time), the first statement of a version wins.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from tablium_rakeback.db.models import Club, DealVersion, Member, UnionClub
from tablium_rakeback.domain.periods import period_of
from tablium_rakeback.domain.split import Deal, validate
from tablium_rakeback.services import accrual, totals
from tablium_rakeback.services.accrual import UNKNOWN_ROLE


@dataclass(frozen=True)
class PlayerRake:
    player_id: uuid.UUID
    rake: int


@dataclass(frozen=True)
class Hand:
    hand_id: uuid.UUID
    table_id: uuid.UUID
    club_id: uuid.UUID | None
    union_id: uuid.UUID | None
    asset: str
    time: datetime
    players: list[PlayerRake]


# The payout period of the service's default settings (a week).
WEEK = timedelta(days=7)


async def record_hands(session: AsyncSession, hands: Sequence[Hand], period: timedelta = WEEK) -> None:
    """Store each player's rake once (keyed on hand and player, whatever the envelope) and accrue it.

    Set-based over the hands of a consumer batch: a handful of statements whatever their number
    (memberships once per table club, the deal versions of every club concerned, the rakes in one insert
    with their outcome — a duplicate inserts nothing and stops there —, every accrual row, and one
    ``rakeback.accrued`` per hand in one insert). The same as recording the hands one after another.
    ``period``: the payout period's length (each rake is totalled in its hand's period)."""
    await accrual.lock_for_hands(session)
    rakes: dict[tuple[uuid.UUID, uuid.UUID], accrual.NewRake] = {}
    for hand in hands:
        period_start = period_of(hand.time, period).start
        for p in hand.players:
            if p.rake > 0 and (hand.hand_id, p.player_id) not in rakes:
                rakes[(hand.hand_id, p.player_id)] = accrual.NewRake(
                    hand_id=hand.hand_id,
                    player_id=p.player_id,
                    table_id=hand.table_id,
                    club_id=hand.club_id,
                    union_id=hand.union_id,
                    asset=hand.asset,
                    rake=p.rake,
                    hand_time=hand.time,
                    period_start=period_start,
                    # A public table's rake is accrued by tier when its period is paid.
                    status="tier",
                )
    if not rakes:
        return
    plans = await accrual.plan_club_rakes(session, [r for r in rakes.values() if r.club_id is not None])
    # Sorted, so concurrent batches holding the same hand take its rows' locks in one order.
    ordered = [rakes[key] for key in sorted(rakes)]
    duplicates = await accrual.insert_rakes(session, ordered)
    accrued = [(r, s) for r, s in plans if (r.hand_id, r.player_id) not in duplicates] if duplicates else plans
    await accrual.announce(session, accrued)
    # Last: the totals' row locks (another batch of the same players waits on them) are held only until
    # the commit that follows.
    await totals.write_splits(session, accrued)


async def record_hand(session: AsyncSession, hand: Hand, period: timedelta = WEEK) -> None:
    await record_hands(session, [hand], period)


async def _upsert(session: AsyncSession, model: Any, values: dict[str, Any], keys: list[str]) -> bool:
    """Insert, or update when ``values`` carry a newer ``seq``; whether the row changed."""
    statement = insert(model).values(**values)
    changed = await session.scalar(
        statement.on_conflict_do_update(
            index_elements=keys,
            set_={k: statement.excluded[k] for k in values if k not in keys},
            where=model.seq < statement.excluded.seq,
        ).returning(model.seq)
    )
    return changed is not None


async def club_created(session: AsyncSession, club_id: uuid.UUID, owner_id: uuid.UUID, seq: int) -> None:
    await accrual.lock_for_facts(session)
    await _upsert(session, Club, {"club_id": club_id, "owner_id": owner_id, "closed": False, "seq": seq}, ["club_id"])


async def club_closed(session: AsyncSession, club_id: uuid.UUID, seq: int) -> None:
    await accrual.lock_for_facts(session)
    await _upsert(session, Club, {"club_id": club_id, "owner_id": None, "closed": True, "seq": seq}, ["club_id"])


async def membership(
    session: AsyncSession,
    *,
    club_id: uuid.UUID,
    player_id: uuid.UUID,
    role: str,
    agent_id: uuid.UUID | None,
    active: bool,
    seq: int,
) -> None:
    await accrual.lock_for_facts(session)
    values = {
        "club_id": club_id,
        "player_id": player_id,
        "role": role,
        "agent_id": agent_id,
        "active": active,
        "seq": seq,
    }
    if await _upsert(session, Member, values, ["club_id", "player_id"]):
        if active:
            await accrual.reevaluate_player(session, player_id)
        return
    known = await session.get_one(Member, (club_id, player_id), with_for_update=True)
    if known.role == UNKNOWN_ROLE:
        # The leave arrived first: the join, older, still tells the role and agent the hands were played with.
        known.role, known.agent_id = role, agent_id
        await accrual.reevaluate_player(session, player_id)


async def member_left(session: AsyncSession, *, club_id: uuid.UUID, player_id: uuid.UUID, seq: int) -> None:
    """The row stays (role and agent) for the hands played before; it only stops being active. Left before
    the join arrived, the row waits for it with no role (a rake does not accrue through it until then)."""
    await accrual.lock_for_facts(session)
    known = await session.get(Member, (club_id, player_id), with_for_update=True)
    if known is None:
        session.add(
            Member(club_id=club_id, player_id=player_id, role=UNKNOWN_ROLE, agent_id=None, active=False, seq=seq)
        )
    elif known.seq < seq:
        known.active, known.seq = False, seq


async def union_membership(
    session: AsyncSession, *, union_id: uuid.UUID, club_id: uuid.UUID, active: bool, seq: int
) -> None:
    await accrual.lock_for_facts(session)
    values = {"union_id": union_id, "club_id": club_id, "active": active, "seq": seq}
    if await _upsert(session, UnionClub, values, ["union_id", "club_id"]) and active:
        await accrual.reevaluate_union(session, union_id)


async def deal_changed(session: AsyncSession, deal: Deal) -> None:
    """Store a deal version (refused whole if it breaks a rule) and re-evaluate what it may govern."""
    validate(deal)
    await accrual.lock_for_facts(session)
    assert deal.effective_from is not None
    inserted = await session.scalar(
        insert(DealVersion)
        .values(
            club_id=uuid.UUID(deal.club_id),
            version=deal.version,
            union_id=uuid.UUID(deal.union_id) if deal.union_id else None,
            effective_from=deal.effective_from,
            union_bps=deal.union_bps,
            club_bps=deal.club_bps,
            player_bps=deal.player_bps,
            agents=[
                {"agent_id": a.agent_id, "parent_agent_id": a.parent_agent_id, "bps": a.bps, "player_bps": a.player_bps}
                for a in deal.agents
            ],
        )
        .on_conflict_do_nothing()
        .returning(DealVersion.version)
    )
    if inserted is None:
        return
    row = await session.scalar(
        select(DealVersion).where(DealVersion.club_id == uuid.UUID(deal.club_id), DealVersion.version == deal.version)
    )
    assert row is not None
    await accrual.reevaluate_club(session, row)
