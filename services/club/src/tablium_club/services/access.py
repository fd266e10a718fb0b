"""Loading a club under its lock and checking the caller's role against the permission matrix."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tablium_club.db.models import Club, Member
from tablium_club.domain.permissions import Action, Role, require
from tablium_kit.errors import Conflict, NotFound


@dataclass
class Acting:
    """The club (locked when asked), the caller and their role in it."""

    club: Club
    actor: uuid.UUID
    role: Role
    member: Member | None


async def load_club(session: AsyncSession, club_id: uuid.UUID, *, lock: bool) -> Club:
    statement = select(Club).where(Club.id == club_id)
    club = (await session.execute(statement.with_for_update() if lock else statement)).scalar_one_or_none()
    if club is None:
        raise NotFound("no such club")
    return club


async def member_of(session: AsyncSession, club_id: uuid.UUID, player_id: uuid.UUID) -> Member | None:
    return await session.get(Member, (club_id, player_id))


async def acting(
    session: AsyncSession, club_id: uuid.UUID, actor: uuid.UUID, action: Action, *, lock: bool = True
) -> Acting:
    """The caller may do ``action`` in the club (403 otherwise); writes lock the club first, and a closed
    club takes no more writes (409)."""
    club = await load_club(session, club_id, lock=lock)
    member = await member_of(session, club_id, actor)
    role = Role(member.role) if member is not None else Role.OUTSIDER
    require(role, action)
    if lock and club.status == "closed":
        raise Conflict("the club is closed")
    return Acting(club, actor, role, member)


async def target_member(session: AsyncSession, club_id: uuid.UUID, player_id: uuid.UUID) -> Member:
    member = await member_of(session, club_id, player_id)
    if member is None:
        raise NotFound("that player is not a member of this club")
    return member
