"""Unions: a club's owner founds one or asks to join one; the union's owner approves, sets each club's
share, removes clubs. Locks: the union's row first, then the club's, everywhere both are taken.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tablium_club.db.models import Club, Member, Union, UnionClub
from tablium_club.domain.deals import DealTerms, bps_cap_issue
from tablium_club.domain.permissions import Action, Role, require
from tablium_club.events import publish_union, publish_union_dissolved
from tablium_club.services import audit
from tablium_club.services.access import acting, load_club, member_of
from tablium_club.services.deals import agent_tree, latest, terms_of, write_version
from tablium_kit.errors import Conflict, Forbidden, InvalidInput, NotFound


async def _lock_union(session: AsyncSession, union_id: uuid.UUID) -> Union:
    union = (await session.execute(select(Union).where(Union.id == union_id).with_for_update())).scalar_one_or_none()
    if union is None:
        raise NotFound("no such union")
    return union


async def _rewrite_deal(session: AsyncSession, club: Club, actor: uuid.UUID, union_bps: int | None) -> None:
    """A new deal version carrying the club's union and the union's share (the club's layers unchanged)."""
    previous = await latest(session, club.id)
    base = terms_of(previous) if previous is not None else DealTerms(None, 0, 0, ())
    issue = bps_cap_issue(base, union_bps)
    if issue is not None:
        raise Conflict(issue)
    # Agents who stepped down since the last version drop out of it (they would have 0 anyway).
    agents = await agent_tree(session, club.id)
    terms = DealTerms(union_bps, base.club_bps, base.player_bps, tuple(a for a in base.agents if a.agent_id in agents))
    try:
        await write_version(session, club, actor, terms, None)
    except InvalidInput as exc:
        raise Conflict(
            f"the club's deal no longer fits its agents ({exc.detail}): the club sets a new deal first"
        ) from exc


async def _enter(session: AsyncSession, union: Union, club: Club, actor: uuid.UUID, place: UnionClub) -> None:
    if club.union_id is not None and club.union_id != union.id:
        raise Conflict("the club is in another union")
    previous = await latest(session, club.id)
    # The union hands down what the club already gives, keeping nothing, until its owner sets a share.
    place.union_bps = previous.club_bps if previous is not None else 0
    place.status = "member"
    club.union_id = union.id
    await session.flush()
    await publish_union(session, union, "club.union_joined", club.id)
    await _rewrite_deal(session, club, actor, place.union_bps)
    await audit.record(session, club.id, actor, "union.join", target=union.id, after={"union_id": str(union.id)})


async def create_union(session: AsyncSession, club_id: uuid.UUID, actor: uuid.UUID, name: str) -> Union:
    """The club's owner founds a union, owns it, and the club is its first member."""
    union = Union(id=uuid.uuid4(), name=name, owner_id=actor, founding_club_id=club_id, seq=0)
    session.add(union)
    await session.flush()
    union = await _lock_union(session, union.id)
    act = await acting(session, club_id, actor, Action.MANAGE_UNION)
    if act.club.union_id is not None:
        raise Conflict("the club is already in a union")
    place = UnionClub(union_id=union.id, club_id=club_id, status="pending", requested_by=actor)
    session.add(place)
    await _enter(session, union, act.club, actor, place)
    return union


async def ask_to_join(session: AsyncSession, union_id: uuid.UUID, club_id: uuid.UUID, actor: uuid.UUID) -> UnionClub:
    union = await _lock_union(session, union_id)
    act = await acting(session, club_id, actor, Action.MANAGE_UNION)
    place = await session.get(UnionClub, (union.id, club_id))
    if place is not None:
        return place  # asked already, or in
    if act.club.union_id is not None:
        raise Conflict("the club is already in a union")
    place = UnionClub(union_id=union.id, club_id=club_id, status="pending", requested_by=actor)
    session.add(place)
    await session.flush()
    return place


async def decide(
    session: AsyncSession, union_id: uuid.UUID, club_id: uuid.UUID, actor: uuid.UUID, *, approve: bool
) -> UnionClub | None:
    """The union's owner lets a club in (approving twice is one approval) or turns it down."""
    union = await _lock_union(session, union_id)
    if union.owner_id != actor:
        raise Forbidden("only the union's owner decides who joins it")
    club = await load_club(session, club_id, lock=True)
    place = await session.get(UnionClub, (union.id, club_id))
    if place is None:
        raise NotFound("that club has not asked to join this union")
    if place.status == "member":
        if approve:
            return place
        raise Conflict("the club is in the union already: remove it instead")
    if not approve:
        await session.delete(place)
        return None
    if club.status == "closed":
        raise Conflict("the club is closed")
    await _enter(session, union, club, actor, place)
    return place


async def leave(session: AsyncSession, union_id: uuid.UUID, club_id: uuid.UUID, actor: uuid.UUID) -> None:
    """The club's owner takes the club out, or the union's owner removes it (the founding club stays)."""
    union = await _lock_union(session, union_id)
    club = await load_club(session, club_id, lock=True)
    if union.owner_id != actor:
        owner = await member_of(session, club_id, actor)
        require(Role(owner.role) if owner is not None else Role.OUTSIDER, Action.MANAGE_UNION)
    if club_id == union.founding_club_id:
        raise Conflict("the founding club cannot leave its union")
    place = await session.get(UnionClub, (union.id, club_id))
    if place is None:
        raise NotFound("the club is not in this union")
    was_member = place.status == "member"
    await session.delete(place)
    if was_member:
        club.union_id = None
        await session.flush()
        await publish_union(session, union, "club.union_left", club.id)
        await _rewrite_deal(session, club, actor, None)
        await audit.record(session, club.id, actor, "union.leave", target=union.id, before={"union_id": str(union.id)})


async def dissolve(session: AsyncSession, union_id: uuid.UUID, actor: uuid.UUID) -> list[uuid.UUID]:
    """The union's owner ends the union: each member club leaves it as by :func:`leave` (``club.union_left``,
    a deal version without the union, an audit entry ``union.dissolve`` in the club's trail), requests
    still pending are dropped, ``club.union_dissolved`` is stated and the union is gone. The clubs that
    left, in id order (the order their rows are locked in)."""
    union = await _lock_union(session, union_id)
    if union.owner_id != actor:
        raise Forbidden("only the union's owner dissolves it")
    places = (
        await session.scalars(select(UnionClub).where(UnionClub.union_id == union.id).order_by(UnionClub.club_id))
    ).all()
    left: list[uuid.UUID] = []
    for place in places:
        club = await load_club(session, place.club_id, lock=True)
        await session.delete(place)
        if place.status != "member":
            continue
        club.union_id = None
        await session.flush()
        await publish_union(session, union, "club.union_left", club.id)
        await _rewrite_deal(session, club, actor, None)
        await audit.record(
            session, club.id, actor, "union.dissolve", target=union.id, before={"union_id": str(union.id)}
        )
        left.append(club.id)
    await publish_union_dissolved(session, union, left)
    await session.flush()
    await session.delete(union)
    return left


async def set_union_share(
    session: AsyncSession, union_id: uuid.UUID, club_id: uuid.UUID, actor: uuid.UUID, union_bps: int
) -> UnionClub:
    """What the union hands down to one of its clubs: a new version of that club's deal."""
    union = await _lock_union(session, union_id)
    if union.owner_id != actor:
        raise Forbidden("only the union's owner sets the union's share")
    club = await load_club(session, club_id, lock=True)
    place = await session.get(UnionClub, (union.id, club_id))
    if place is None or place.status != "member":
        raise NotFound("the club is not in this union")
    if place.union_bps != union_bps:
        await _rewrite_deal(session, club, actor, union_bps)
        place.union_bps = union_bps
    return place


async def read(session: AsyncSession, union_id: uuid.UUID, actor: uuid.UUID) -> tuple[Union, list[UnionClub]]:
    """The union's owner and the staff of its clubs (members or asking) see it."""
    union = await session.get(Union, union_id)
    if union is None:
        raise NotFound("no such union")
    places = list(
        (
            await session.execute(
                select(UnionClub).where(UnionClub.union_id == union_id).order_by(UnionClub.created_at)
            )
        ).scalars()
    )
    if union.owner_id != actor:
        staff = await session.execute(
            select(Member.club_id).where(
                Member.player_id == actor,
                Member.role.in_([Role.OWNER, Role.MANAGER]),
                Member.club_id.in_([p.club_id for p in places]),
            )
        )
        if staff.first() is None:
            raise Forbidden("only the union's owner and its clubs' staff see the union")
    return union, places
