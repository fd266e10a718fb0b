"""Clubs: create (the creator owns it), read, change settings, close, transfer ownership.

Handlers pass the request's session; the kit commits it on a 2xx and rolls it back otherwise, so each
function here is one transaction, and the club's row lock (``access.acting``) is held until its end.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from tablium_club.db.models import Club, InviteCode, JoinRequest, Member
from tablium_club.domain.permissions import Action, Role
from tablium_club.events import publish_club, publish_member
from tablium_club.services import audit
from tablium_club.services.access import acting, load_club, member_of, target_member
from tablium_kit.errors import Conflict, Forbidden, InvalidInput

SETTINGS_FIELDS = ("name", "description", "logo_url", "privacy", "default_table_rules")


def settings_of(club: Club) -> dict[str, Any]:
    return {name: getattr(club, name) for name in SETTINGS_FIELDS}


async def create_club(
    session: AsyncSession, owner: uuid.UUID, settings: dict[str, Any], *, max_owned: int
) -> tuple[Club, Member]:
    owned = await session.scalar(
        select(func.count()).select_from(Member).where(Member.player_id == owner, Member.role == Role.OWNER)
    )
    if (owned or 0) >= max_owned:
        raise Conflict(f"a player may own at most {max_owned} clubs")
    club = Club(id=uuid.uuid4(), owner_id=owner, status="open", seq=0, **settings)
    member = Member(club_id=club.id, player_id=owner, role=Role.OWNER, agent_id=None)
    session.add_all([club, member])
    await session.flush()
    await publish_club(session, club, "club.created", owner_id=owner, name=club.name)
    await publish_member(session, club, "club.member_joined", player_id=owner, role=Role.OWNER, agent_id=None)
    await audit.record(session, club.id, owner, "club.create", after=settings_of(club))
    return club, member


async def read_club(session: AsyncSession, club_id: uuid.UUID, caller: uuid.UUID) -> tuple[Club, Member | None]:
    """A public club is visible to anyone signed in; a private one to its members only."""
    club = await load_club(session, club_id, lock=False)
    member = await member_of(session, club_id, caller)
    if member is None and club.privacy != "public":
        raise Forbidden("a private club is visible to its members only")
    return club, member


async def my_clubs(session: AsyncSession, player: uuid.UUID) -> list[tuple[Club, Member]]:
    rows = await session.execute(
        select(Club, Member)
        .join(Member, Member.club_id == Club.id)
        .where(Member.player_id == player)
        .order_by(Club.created_at)
    )
    return [(club, member) for club, member in rows.tuples()]


async def public_clubs(session: AsyncSession, *, limit: int) -> list[Club]:
    rows = await session.execute(
        select(Club)
        .where(Club.privacy == "public", Club.status == "open")
        .order_by(Club.created_at.desc())
        .limit(limit)
    )
    return list(rows.scalars())


async def update_settings(
    session: AsyncSession, club_id: uuid.UUID, actor: uuid.UUID, changes: dict[str, Any]
) -> tuple[Club, Member | None]:
    act = await acting(session, club_id, actor, Action.UPDATE_SETTINGS)
    before = settings_of(act.club)
    for name, value in changes.items():
        if name not in SETTINGS_FIELDS:
            raise InvalidInput(f"{name} is not a club setting")
        setattr(act.club, name, value)
    after = settings_of(act.club)
    if after != before:
        await audit.record(session, club_id, actor, "club.update_settings", before=before, after=after)
    return act.club, act.member


async def close_club(session: AsyncSession, club_id: uuid.UUID, actor: uuid.UUID) -> Club:
    act = await acting(session, club_id, actor, Action.CLOSE_CLUB, lock=False)
    club = await load_club(session, club_id, lock=True)
    if club.status == "closed":
        return club  # closing twice is one close
    club.status = "closed"
    club.closed_at = datetime.now(UTC)
    # Nothing waits on a closed club: pending requests end, codes stop working.
    for request in (
        await session.execute(
            select(JoinRequest).where(JoinRequest.club_id == club_id, JoinRequest.status == "pending")
        )
    ).scalars():
        request.status = "cancelled"
    for code in (
        await session.execute(select(InviteCode).where(InviteCode.club_id == club_id, InviteCode.revoked_at.is_(None)))
    ).scalars():
        code.revoked_at = club.closed_at
    await publish_club(session, club, "club.closed")
    await audit.record(session, club_id, act.actor, "club.close", before={"status": "open"}, after={"status": "closed"})
    return club


async def transfer_ownership(
    session: AsyncSession, club_id: uuid.UUID, actor: uuid.UUID, new_owner: uuid.UUID
) -> Member:
    """The owner hands the club to another member, and stays on as a manager."""
    act = await acting(session, club_id, actor, Action.TRANSFER_OWNERSHIP)
    if new_owner == actor:
        raise Conflict("you already own this club")
    target = await target_member(session, club_id, new_owner)
    assert act.member is not None  # the matrix lets only the owner, a member, through
    before = {"owner_id": str(actor), "new_owner": audit.member_state(target)}
    act.member.role = Role.MANAGER
    target.role = Role.OWNER
    # The new owner answers to no agent.
    target.agent_id = None
    act.club.owner_id = new_owner
    await publish_member(session, act.club, "club.member_updated", player_id=actor, role=Role.MANAGER, agent_id=None)
    await publish_member(session, act.club, "club.member_updated", player_id=new_owner, role=Role.OWNER, agent_id=None)
    await audit.record(
        session,
        club_id,
        actor,
        "club.transfer_ownership",
        target=new_owner,
        before=before,
        after={"owner_id": str(new_owner)},
    )
    return target
