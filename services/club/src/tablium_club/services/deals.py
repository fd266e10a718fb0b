"""Rakeback deals: versioned, each with an effective-from time, validated, published whole."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tablium_club.db.models import Club, Deal, Member, UnionClub
from tablium_club.domain.deals import AgentShare, DealTerms, validate
from tablium_club.domain.permissions import Action, Role
from tablium_club.events import publish_deal
from tablium_club.services import audit
from tablium_club.services.access import acting
from tablium_kit.errors import InvalidInput, NotFound

# A deal may start this far in the past (clocks differ a little); hands already accrued stay as they are.
CLOCK_TOLERANCE = timedelta(seconds=5)
DEAL_PAGE = 100


def terms_of(deal: Deal) -> DealTerms:
    return DealTerms(
        union_bps=deal.union_bps,
        club_bps=deal.club_bps,
        player_bps=deal.player_bps,
        agents=tuple(
            AgentShare(
                uuid.UUID(a["agent_id"]),
                a["bps"],
                a["player_bps"],
                uuid.UUID(a["parent_agent_id"]) if a["parent_agent_id"] else None,
            )
            for a in deal.agents
        ),
    )


def deal_state(deal: Deal | None) -> dict[str, object] | None:
    if deal is None:
        return None
    return {
        "version": deal.version,
        "effective_from": deal.effective_from.isoformat(),
        "union_bps": deal.union_bps,
        "club_bps": deal.club_bps,
        "player_bps": deal.player_bps,
        "agents": deal.agents,
    }


async def latest(session: AsyncSession, club_id: uuid.UUID) -> Deal | None:
    found = await session.execute(select(Deal).where(Deal.club_id == club_id).order_by(Deal.version.desc()).limit(1))
    return found.scalar_one_or_none()


async def agent_tree(session: AsyncSession, club_id: uuid.UUID) -> dict[uuid.UUID, uuid.UUID | None]:
    rows = await session.execute(
        select(Member.player_id, Member.agent_id).where(Member.club_id == club_id, Member.role == Role.AGENT)
    )
    return dict(rows.tuples().all())


async def union_share(session: AsyncSession, club: Club) -> int | None:
    if club.union_id is None:
        return None
    place = await session.get(UnionClub, (club.union_id, club.id))
    return None if place is None else place.union_bps


async def write_version(
    session: AsyncSession, club: Club, actor: uuid.UUID, terms: DealTerms, effective_from: datetime | None
) -> Deal:
    """A new version of ``club``'s deal (locked by the caller), validated, published, audited."""
    previous = await latest(session, club.id)
    now = datetime.now(UTC)
    start = effective_from or now
    if start < now - CLOCK_TOLERANCE:
        raise InvalidInput("effective_from is in the past: hands already played keep the deal they had")
    if previous is not None and start < previous.effective_from:
        raise InvalidInput("effective_from is before the previous version's")
    checked = validate(terms, await agent_tree(session, club.id))
    deal = Deal(
        club_id=club.id,
        version=(previous.version if previous else 0) + 1,
        effective_from=start,
        union_id=club.union_id,
        union_bps=checked.union_bps if club.union_id is not None else None,
        club_bps=checked.club_bps,
        player_bps=checked.player_bps,
        agents=[
            {
                "agent_id": str(a.agent_id),
                "parent_agent_id": None if a.parent_agent_id is None else str(a.parent_agent_id),
                "bps": a.bps,
                "player_bps": a.player_bps,
            }
            for a in checked.agents
        ],
        created_by=actor,
    )
    session.add(deal)
    await session.flush()
    await publish_deal(session, club, deal)
    await audit.record(session, club.id, actor, "deal.change", before=deal_state(previous), after=deal_state(deal))
    return deal


async def set_deal(
    session: AsyncSession,
    club_id: uuid.UUID,
    actor: uuid.UUID,
    *,
    club_bps: int,
    player_bps: int,
    agents: list[AgentShare],
    effective_from: datetime | None,
) -> Deal:
    """The club's layers; the union's part is the union owner's to set (``unions.set_union_share``)."""
    act = await acting(session, club_id, actor, Action.SET_DEAL)
    terms = DealTerms(await union_share(session, act.club), club_bps, player_bps, tuple(agents))
    return await write_version(session, act.club, actor, terms, effective_from)


async def versions(session: AsyncSession, club_id: uuid.UUID, actor: uuid.UUID) -> list[Deal]:
    await acting(session, club_id, actor, Action.VIEW_DEAL, lock=False)
    found = await session.execute(
        select(Deal).where(Deal.club_id == club_id).order_by(Deal.version.desc()).limit(DEAL_PAGE)
    )
    return list(found.scalars())


async def current(session: AsyncSession, club_id: uuid.UUID, actor: uuid.UUID) -> Deal:
    await acting(session, club_id, actor, Action.VIEW_DEAL, lock=False)
    deal = await latest(session, club_id)
    if deal is None:
        raise NotFound("this club has no deal yet")
    return deal
