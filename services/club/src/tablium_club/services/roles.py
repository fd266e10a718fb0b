"""Roles and the agent tree: managers (the owner's call), agents and who recruited whom (the staff's)."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tablium_club.db.models import Member
from tablium_club.domain.agents import subtree, would_cycle
from tablium_club.domain.permissions import Action, Role, require, require_outranks
from tablium_club.events import publish_member
from tablium_club.services import audit
from tablium_club.services.access import acting, target_member
from tablium_club.services.membership import reparent_recruits
from tablium_kit.errors import Conflict, InvalidInput


async def set_role(
    session: AsyncSession, club_id: uuid.UUID, actor: uuid.UUID, player: uuid.UUID, role: Role
) -> Member:
    """Make a member a manager, an agent or a plain member (ownership moves by transfer only)."""
    if role in (Role.OWNER, Role.OUTSIDER):
        raise InvalidInput("ownership moves by transfer; removing a member is a kick")
    act = await acting(session, club_id, actor, Action.VIEW_CLUB)
    target = await target_member(session, club_id, player)
    old = Role(target.role)
    if old == role:
        return target
    touches_managers = Role.MANAGER in (old, role)
    require(act.role, Action.SET_MANAGER if touches_managers else Action.SET_AGENT)
    require_outranks(act.role, old)
    before = audit.member_state(target)
    if old == Role.AGENT:
        await reparent_recruits(session, act.club, target)
    target.role = role
    if role == Role.MANAGER:
        target.agent_id = None  # staff answer to no agent
    await publish_member(
        session, act.club, "club.member_updated", player_id=player, role=role, agent_id=target.agent_id
    )
    await audit.record(
        session, club_id, actor, "member.set_role", target=player, before=before, after=audit.member_state(target)
    )
    return target


async def set_agent(
    session: AsyncSession, club_id: uuid.UUID, actor: uuid.UUID, player: uuid.UUID, agent_id: uuid.UUID | None
) -> Member:
    """Put a member (or a sub-agent) under an agent, or directly under the club (``agent_id`` None)."""
    act = await acting(session, club_id, actor, Action.SET_AGENT)
    target = await target_member(session, club_id, player)
    if target.role in (Role.OWNER, Role.MANAGER):
        raise Conflict("the owner and managers answer to no agent")
    if target.agent_id == agent_id:
        return target
    parents = await agent_parents(session, club_id)
    if agent_id is not None:
        agent = await target_member(session, club_id, agent_id)
        if agent.role != Role.AGENT:
            raise InvalidInput("agent_id is not an agent of this club")
        if would_cycle(parents, player, agent_id):
            raise Conflict("an agent cannot be put under its own recruit")
    before = audit.member_state(target)
    target.agent_id = agent_id
    await publish_member(
        session, act.club, "club.member_updated", player_id=player, role=target.role, agent_id=agent_id
    )
    await audit.record(
        session, club_id, actor, "member.set_agent", target=player, before=before, after=audit.member_state(target)
    )
    return target


async def agent_parents(session: AsyncSession, club_id: uuid.UUID) -> dict[uuid.UUID, uuid.UUID | None]:
    """Every member -> the agent it answers to (None: the club)."""
    rows = await session.execute(select(Member.player_id, Member.agent_id).where(Member.club_id == club_id))
    return dict(rows.tuples().all())


async def tree(session: AsyncSession, club_id: uuid.UUID, actor: uuid.UUID) -> tuple[uuid.UUID | None, list[Member]]:
    """The staff see everyone; an agent sees itself and its subtree only. Returns the root (None: the club)."""
    act = await acting(session, club_id, actor, Action.VIEW_AGENTS, lock=False)
    found = await session.execute(select(Member).where(Member.club_id == club_id).order_by(Member.joined_at))
    everyone = list(found.scalars())
    if act.role != Role.AGENT:
        return None, everyone
    visible = subtree({m.player_id: m.agent_id for m in everyone}, actor)
    return actor, [m for m in everyone if m.player_id in visible]
