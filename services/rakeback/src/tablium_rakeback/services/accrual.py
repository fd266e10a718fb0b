"""Accruing a player's rake at a club table under the deal in force at the hand's time.

Order of facts does not matter (ADR 0011): every rake and every deal version is stored, and a rake is
(re-)evaluated from what is stored whenever a fact that could change its result arrives:

- a hand whose player's membership, or whose club's deal in force, is not known yet stays ``pending``;
  ``club.member_joined``/``member_updated`` re-evaluate the player's pending rakes, ``club.deal_changed``
  those of the club's members and those accrued under an older version than the new one where it is in
  force, ``club.union_joined`` the pending rakes of the union's tables;
- a re-evaluation that lands on the same club and version changes nothing; one that does not replaces the
  rake's unpaid accruals and states ``rakeback.accrued`` again with the higher ``deal_version``. A rake
  already paid out is left as paid (logged): its period is closed.

Every writer takes the accrual lock first (:func:`lock_for_hands` shared, :func:`lock_for_facts`
exclusive), so a hand and the fact it waits for never miss each other in two concurrent transactions.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import delete, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from tablium_kit.money import format_amount
from tablium_rakeback.db.models import Accrual, DealVersion, Member, Rake, UnionClub
from tablium_rakeback.domain.split import AgentDeal, Deal, Part, layers, split
from tablium_rakeback.events import ACCRUED, outbox

log = structlog.get_logger("tablium.rakeback.accrual")

# pg_advisory_xact_lock key of accruals (any bigint unique to this service's database).
_LOCK = 0x52414B45  # "RAKE"


async def lock_for_hands(session: AsyncSession) -> None:
    """Hands accrue concurrently with each other, never with a club fact or a payout run."""
    await session.execute(text("SELECT pg_advisory_xact_lock_shared(:k)"), {"k": _LOCK})


async def lock_for_facts(session: AsyncSession) -> None:
    await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK})


def deal_of(row: DealVersion) -> Deal:
    return Deal(
        club_id=str(row.club_id),
        union_id=str(row.union_id) if row.union_id else None,
        version=row.version,
        union_bps=row.union_bps,
        club_bps=row.club_bps,
        player_bps=row.player_bps,
        agents=tuple(
            AgentDeal(
                agent_id=a["agent_id"], parent_agent_id=a["parent_agent_id"], bps=a["bps"], player_bps=a["player_bps"]
            )
            for a in row.agents
        ),
        effective_from=row.effective_from,
    )


async def _member_of(session: AsyncSession, rake: Rake) -> Member | None:
    """The membership the rake flows through: of the table's club, or at a union table, of the player's
    own club in that union. A member who left since still counts: the hand was played as a member."""
    if rake.union_id is None:
        return await session.get(Member, (rake.club_id, rake.player_id))
    query = (
        select(Member)
        .join(UnionClub, (UnionClub.club_id == Member.club_id) & (UnionClub.union_id == rake.union_id))
        .where(Member.player_id == rake.player_id)
        .order_by(UnionClub.active.desc(), Member.active.desc(), Member.club_id)
        .limit(1)
    )
    member: Member | None = await session.scalar(query)
    return member


async def _deal_in_force(session: AsyncSession, club_id: uuid.UUID, at: datetime) -> DealVersion | None:
    query = (
        select(DealVersion)
        .where(DealVersion.club_id == club_id, DealVersion.effective_from <= at)
        .order_by(DealVersion.version.desc())
        .limit(1)
    )
    deal: DealVersion | None = await session.scalar(query)
    return deal


async def evaluate(session: AsyncSession, rake: Rake) -> None:
    """Accrue (or re-accrue) one club rake from the stored facts; ``rake`` is locked by the caller."""
    member = await _member_of(session, rake)
    deal_row = await _deal_in_force(session, member.club_id, rake.hand_time) if member else None
    if member is None or deal_row is None:
        rake.status = "pending"
        return
    if rake.status == "accrued" and (rake.member_club_id, rake.deal_version) == (member.club_id, deal_row.version):
        return
    key = (Accrual.hand_id == rake.hand_id) & (Accrual.player_id == rake.player_id)
    if await session.scalar(select(func.count()).where(key, Accrual.payout_id.is_not(None))):
        log.warning("late fact for a rake already paid out", hand_id=str(rake.hand_id), player=str(rake.player_id))
        return
    deal = deal_of(deal_row)
    union_id = str(rake.union_id) if rake.union_id is not None and deal.union_id == str(rake.union_id) else None
    agent_id = str(member.agent_id) if member.agent_id else None
    parts = split(rake.rake, layers(deal, player_id=str(rake.player_id), agent_id=agent_id, union_id=union_id))
    await session.execute(delete(Accrual).where(key))
    await write_parts(session, rake, parts)
    rake.status, rake.member_club_id, rake.deal_version, rake.tier = "accrued", member.club_id, deal.version, None
    await announce(session, rake, parts)


async def write_parts(session: AsyncSession, rake: Rake, parts: list[Part]) -> None:
    rows = [
        {
            "hand_id": rake.hand_id,
            "player_id": rake.player_id,
            "kind": p.kind,
            "beneficiary": p.beneficiary,
            "asset": rake.asset,
            "amount": p.amount,
            "bps": p.bps,
            "hand_time": rake.hand_time,
        }
        for p in parts
    ]
    await session.execute(insert(Accrual), rows)


async def announce(session: AsyncSession, rake: Rake, parts: list[Part]) -> None:
    data: dict[str, Any] = {
        "hand_id": str(rake.hand_id),
        "player_id": str(rake.player_id),
        "table_id": str(rake.table_id),
        "club_id": str(rake.member_club_id) if rake.member_club_id else None,
        "union_id": str(rake.union_id) if rake.union_id else None,
        "asset": rake.asset,
        "rake": format_amount(rake.rake),
        "hand_time": rake.hand_time.isoformat(),
        "deal_version": rake.deal_version,
        "tier": rake.tier,
        "parts": [
            {"kind": p.kind, "beneficiary": p.beneficiary, "bps": p.bps, "amount": format_amount(p.amount)}
            for p in parts
        ],
    }
    await outbox.add(session, type=ACCRUED, subject=str(rake.player_id), data=data)


async def _evaluate_all(session: AsyncSession, query: Any) -> int:
    rakes = (
        await session.scalars(query.order_by(Rake.hand_time, Rake.hand_id, Rake.player_id).with_for_update())
    ).all()
    for rake in rakes:
        await evaluate(session, rake)
    return len(rakes)


async def reevaluate_player(session: AsyncSession, player_id: uuid.UUID) -> int:
    """A membership fact: the player's rakes that waited for one."""
    return await _evaluate_all(session, select(Rake).where(Rake.status == "pending", Rake.player_id == player_id))


async def reevaluate_club(session: AsyncSession, deal: DealVersion) -> int:
    """A deal version: its members' pending rakes, and the rakes it now governs under an older version."""
    members = select(Member.player_id).where(Member.club_id == deal.club_id)
    pending = await _evaluate_all(session, select(Rake).where(Rake.status == "pending", Rake.player_id.in_(members)))
    superseded = await _evaluate_all(
        session,
        select(Rake).where(
            Rake.status == "accrued",
            Rake.member_club_id == deal.club_id,
            Rake.hand_time >= deal.effective_from,
            Rake.deal_version < deal.version,
        ),
    )
    return pending + superseded


async def reevaluate_union(session: AsyncSession, union_id: uuid.UUID) -> int:
    return await _evaluate_all(session, select(Rake).where(Rake.status == "pending", Rake.union_id == union_id))
