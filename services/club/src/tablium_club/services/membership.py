"""Membership: join requests and the staff's decisions, invite codes, leaving, kicks and bans.

Every change runs under the club's row lock and checks for duplicates under it, so identical requests
racing each other (two approvals, two joins with one code) have one effect; the second finds the first's.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Literal

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tablium_club.db.models import Ban, Club, InviteCode, JoinRequest, Member
from tablium_club.domain.codes import unusable_because
from tablium_club.domain.permissions import Action, Role, require_outranks
from tablium_club.events import publish_member, publish_member_left
from tablium_club.services import audit
from tablium_club.services.access import acting, load_club, member_of, target_member
from tablium_kit.errors import Conflict, Forbidden, NotFound

LeaveReason = Literal["left", "kicked", "banned"]


async def _check_may_join(session: AsyncSession, club: Club, player: uuid.UUID) -> None:
    if club.status == "closed":
        raise Conflict("the club is closed")
    if await session.get(Ban, (club.id, player)) is not None:
        raise Forbidden("you are banned from this club")


async def _admit(session: AsyncSession, club: Club, player: uuid.UUID, *, agent_id: uuid.UUID | None) -> Member:
    member = Member(club_id=club.id, player_id=player, role=Role.MEMBER, agent_id=agent_id)
    session.add(member)
    # A request still waiting is answered by the admission.
    await session.execute(
        update(JoinRequest)
        .where(JoinRequest.club_id == club.id, JoinRequest.player_id == player, JoinRequest.status == "pending")
        .values(status="approved", decided_at=datetime.now(UTC))
    )
    await session.flush()
    await publish_member(session, club, "club.member_joined", player_id=player, role=Role.MEMBER, agent_id=agent_id)
    return member


async def request_to_join(session: AsyncSession, club_id: uuid.UUID, player: uuid.UUID, message: str) -> JoinRequest:
    """A request for the staff to decide; asking again while one waits returns the waiting one."""
    club = await load_club(session, club_id, lock=True)
    await _check_may_join(session, club, player)
    if club.privacy != "public":
        raise Forbidden("a private club admits players by invite code only")
    if await member_of(session, club_id, player) is not None:
        raise Conflict("you are already a member of this club")
    pending = await _pending_request(session, club_id, player)
    if pending is not None:
        return pending
    request = JoinRequest(id=uuid.uuid4(), club_id=club_id, player_id=player, message=message, status="pending")
    session.add(request)
    await session.flush()
    return request


async def _pending_request(session: AsyncSession, club_id: uuid.UUID, player: uuid.UUID) -> JoinRequest | None:
    found = await session.execute(
        select(JoinRequest).where(
            JoinRequest.club_id == club_id, JoinRequest.player_id == player, JoinRequest.status == "pending"
        )
    )
    return found.scalar_one_or_none()


async def cancel_request(session: AsyncSession, club_id: uuid.UUID, player: uuid.UUID) -> None:
    await load_club(session, club_id, lock=True)
    pending = await _pending_request(session, club_id, player)
    if pending is not None:
        pending.status = "cancelled"


async def my_request(session: AsyncSession, club_id: uuid.UUID, player: uuid.UUID) -> JoinRequest:
    found = await session.execute(
        select(JoinRequest)
        .where(JoinRequest.club_id == club_id, JoinRequest.player_id == player)
        .order_by(JoinRequest.created_at.desc())
        .limit(1)
    )
    request = found.scalar_one_or_none()
    if request is None:
        raise NotFound("you have not asked to join this club")
    return request


async def pending_requests(session: AsyncSession, club_id: uuid.UUID, actor: uuid.UUID) -> list[JoinRequest]:
    await acting(session, club_id, actor, Action.DECIDE_REQUESTS, lock=False)
    found = await session.execute(
        select(JoinRequest)
        .where(JoinRequest.club_id == club_id, JoinRequest.status == "pending")
        .order_by(JoinRequest.created_at)
    )
    return list(found.scalars())


async def decide(
    session: AsyncSession, club_id: uuid.UUID, request_id: uuid.UUID, actor: uuid.UUID, *, approve: bool
) -> JoinRequest:
    """Approve or reject a pending request. The same decision again returns the request as it is; the
    opposite one, once decided, is a conflict."""
    act = await acting(session, club_id, actor, Action.DECIDE_REQUESTS)
    request = await session.get(JoinRequest, request_id)
    if request is None or request.club_id != club_id:
        raise NotFound("no such join request")
    wanted = "approved" if approve else "rejected"
    if request.status == wanted:
        return request
    if request.status != "pending":
        raise Conflict(f"the request is already {request.status}")
    if approve:
        await _check_may_join(session, act.club, request.player_id)
        if await member_of(session, club_id, request.player_id) is None:
            await _admit(session, act.club, request.player_id, agent_id=None)
    request.status = wanted
    request.decided_by = actor
    request.decided_at = datetime.now(UTC)
    await audit.record(
        session,
        club_id,
        actor,
        f"request.{'approve' if approve else 'reject'}",
        target=request.player_id,
        before={"status": "pending"},
        after={"status": wanted},
    )
    return request


async def join_with_code(session: AsyncSession, code: str, player: uuid.UUID) -> Member:
    """Join at once with an invite code (an agent's code puts the player under that agent). A member using
    a code again stays as they are and uses nothing up."""
    found = await session.get(InviteCode, code)
    if found is None:
        raise NotFound("no such invite code")
    club = await load_club(session, found.club_id, lock=True)
    invite = await session.get(InviteCode, code, with_for_update=True, populate_existing=True)
    assert invite is not None  # codes are never deleted
    await _check_may_join(session, club, player)
    existing = await member_of(session, club.id, player)
    if existing is not None:
        return existing
    reason = unusable_because(
        revoked_at=invite.revoked_at,
        expires_at=invite.expires_at,
        max_uses=invite.max_uses,
        uses=invite.uses,
        now=datetime.now(UTC),
    )
    if reason is not None:
        raise Conflict(reason)
    agent_id = invite.agent_id
    if agent_id is not None:
        agent = await member_of(session, club.id, agent_id)
        if agent is None or agent.role != Role.AGENT:
            agent_id = None  # the agent stepped down since: the recruit lands directly under the club
    invite.uses += 1
    return await _admit(session, club, player, agent_id=agent_id)


async def _remove(session: AsyncSession, club: Club, member: Member, reason: LeaveReason) -> None:
    """Take ``member`` out; its recruits (and sub-agents) move up to its own agent."""
    await reparent_recruits(session, club, member)
    await session.delete(member)
    await session.flush()
    await publish_member_left(session, club, player_id=member.player_id, reason=reason)


async def reparent_recruits(session: AsyncSession, club: Club, member: Member) -> None:
    recruits = await session.execute(
        select(Member).where(Member.club_id == club.id, Member.agent_id == member.player_id)
    )
    for recruit in recruits.scalars():
        recruit.agent_id = member.agent_id
        await publish_member(
            session,
            club,
            "club.member_updated",
            player_id=recruit.player_id,
            role=recruit.role,
            agent_id=recruit.agent_id,
        )


async def leave(session: AsyncSession, club_id: uuid.UUID, player: uuid.UUID) -> None:
    act = await acting(session, club_id, player, Action.LEAVE)
    assert act.member is not None
    await _remove(session, act.club, act.member, "left")


async def kick(session: AsyncSession, club_id: uuid.UUID, actor: uuid.UUID, player: uuid.UUID) -> None:
    act = await acting(session, club_id, actor, Action.KICK)
    target = await target_member(session, club_id, player)
    require_outranks(act.role, Role(target.role))
    before = audit.member_state(target)
    await _remove(session, act.club, target, "kicked")
    await audit.record(session, club_id, actor, "member.kick", target=player, before=before)


async def ban(session: AsyncSession, club_id: uuid.UUID, actor: uuid.UUID, player: uuid.UUID, reason: str) -> Ban:
    """Ban a player (a member is removed): no more requests or codes. Banning twice is one ban."""
    act = await acting(session, club_id, actor, Action.BAN)
    existing = await session.get(Ban, (club_id, player))
    if existing is not None:
        return existing
    if player == actor:
        raise Conflict("you cannot ban yourself")
    target = await member_of(session, club_id, player)
    before = audit.member_state(target)
    if target is not None:
        require_outranks(act.role, Role(target.role))
        await _remove(session, act.club, target, "banned")
    await session.execute(
        update(JoinRequest)
        .where(JoinRequest.club_id == club_id, JoinRequest.player_id == player, JoinRequest.status == "pending")
        .values(status="rejected", decided_by=actor, decided_at=datetime.now(UTC))
    )
    banned = Ban(club_id=club_id, player_id=player, banned_by=actor, reason=reason)
    session.add(banned)
    await session.flush()
    await audit.record(session, club_id, actor, "member.ban", target=player, before=before, after={"banned": True})
    return banned


async def unban(session: AsyncSession, club_id: uuid.UUID, actor: uuid.UUID, player: uuid.UUID) -> None:
    await acting(session, club_id, actor, Action.BAN)
    removed = await session.execute(delete(Ban).where(Ban.club_id == club_id, Ban.player_id == player))
    if removed.rowcount:  # type: ignore[attr-defined]
        await audit.record(session, club_id, actor, "member.unban", target=player, before={"banned": True})


async def bans(session: AsyncSession, club_id: uuid.UUID, actor: uuid.UUID) -> list[Ban]:
    await acting(session, club_id, actor, Action.BAN, lock=False)
    found = await session.execute(select(Ban).where(Ban.club_id == club_id).order_by(Ban.created_at))
    return list(found.scalars())


async def members(session: AsyncSession, club_id: uuid.UUID, actor: uuid.UUID) -> list[Member]:
    await acting(session, club_id, actor, Action.VIEW_CLUB, lock=False)
    found = await session.execute(select(Member).where(Member.club_id == club_id).order_by(Member.joined_at))
    return list(found.scalars())
