"""Invite codes: the staff's (optionally for an agent), and each agent's own recruiting code."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tablium_club.db.models import InviteCode
from tablium_club.domain.codes import new_code, unusable_because
from tablium_club.domain.permissions import Action, Role
from tablium_club.services import audit
from tablium_club.services.access import acting, member_of
from tablium_kit.errors import InvalidInput, NotFound


async def create_code(
    session: AsyncSession,
    club_id: uuid.UUID,
    actor: uuid.UUID,
    *,
    expires_at: datetime | None,
    max_uses: int | None,
    agent_id: uuid.UUID | None,
) -> InviteCode:
    await acting(session, club_id, actor, Action.MANAGE_INVITES)
    if expires_at is not None and expires_at <= datetime.now(UTC):
        raise InvalidInput("expires_at must be in the future")
    if agent_id is not None:
        agent = await member_of(session, club_id, agent_id)
        if agent is None or agent.role != Role.AGENT:
            raise InvalidInput("agent_id is not an agent of this club")
    invite = InviteCode(
        code=new_code(),
        club_id=club_id,
        created_by=actor,
        agent_id=agent_id,
        expires_at=expires_at,
        max_uses=max_uses,
        uses=0,
    )
    session.add(invite)
    await session.flush()
    await audit.record(
        session,
        club_id,
        actor,
        "invite.create",
        target=invite.code,
        after={
            "expires_at": None if expires_at is None else expires_at.isoformat(),
            "max_uses": max_uses,
            "agent_id": None if agent_id is None else str(agent_id),
        },
    )
    return invite


async def agent_code(session: AsyncSession, club_id: uuid.UUID, agent: uuid.UUID) -> InviteCode:
    """The agent's recruiting code: one per agent, the same one on every call while it works."""
    await acting(session, club_id, agent, Action.RECRUIT)
    found = await session.execute(
        select(InviteCode)
        .where(InviteCode.club_id == club_id, InviteCode.agent_id == agent, InviteCode.created_by == agent)
        .order_by(InviteCode.created_at.desc())
    )
    now = datetime.now(UTC)
    for invite in found.scalars():
        reason = unusable_because(
            revoked_at=invite.revoked_at,
            expires_at=invite.expires_at,
            max_uses=invite.max_uses,
            uses=invite.uses,
            now=now,
        )
        if reason is None:
            return invite
    invite = InviteCode(code=new_code(), club_id=club_id, created_by=agent, agent_id=agent, uses=0)
    session.add(invite)
    await session.flush()
    return invite


async def codes(session: AsyncSession, club_id: uuid.UUID, actor: uuid.UUID) -> list[InviteCode]:
    await acting(session, club_id, actor, Action.MANAGE_INVITES, lock=False)
    found = await session.execute(
        select(InviteCode).where(InviteCode.club_id == club_id).order_by(InviteCode.created_at.desc())
    )
    return list(found.scalars())


async def revoke(session: AsyncSession, club_id: uuid.UUID, actor: uuid.UUID, code: str) -> InviteCode:
    await acting(session, club_id, actor, Action.MANAGE_INVITES)
    invite = await session.get(InviteCode, code)
    if invite is None or invite.club_id != club_id:
        raise NotFound("no such invite code in this club")
    if invite.revoked_at is None:
        invite.revoked_at = datetime.now(UTC)
        await audit.record(session, club_id, actor, "invite.revoke", target=code)
    return invite
