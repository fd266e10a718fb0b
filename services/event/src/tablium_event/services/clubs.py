"""Club tournaments (docs/clubs.md, "Club tournaments"): the event service's own projection of club
membership, fed by the club service's events (``events/handlers.py``); who may enter a club tournament, who
directs it, and the registrations of members who left before the start.

No call to the club service: the projection is kept by the consumer. Each row carries the seq of the newest
event applied to it, so an older event arriving late changes nothing.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from tablium_event.db.models import ClubMembership, ClubUnion, Registration, TournamentRow
from tablium_event.db.steps import advance
from tablium_kit.auth import Principal
from tablium_kit.errors import Conflict, Forbidden

STAFF = ("owner", "manager")
DIRECTORS = frozenset({"tournament_director", "admin"})
NOT_A_MEMBER = "a club tournament: only members of its club (or of its union's clubs) may enter"
LEFT = "unregistered: no longer a member of the tournament's club"


async def apply_member(session: AsyncSession, data: dict[str, Any], *, role: str | None) -> None:
    """``club.member_joined``/``member_updated`` (``role``) or ``member_left`` (None), if newer than the row."""
    statement = insert(ClubMembership).values(
        club_id=uuid.UUID(data["club_id"]), player_id=uuid.UUID(data["player_id"]), role=role, seq=int(data["seq"])
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[ClubMembership.club_id, ClubMembership.player_id],
            set_={"role": statement.excluded.role, "seq": statement.excluded.seq},
            where=ClubMembership.seq < statement.excluded.seq,
        )
    )


async def apply_closed(session: AsyncSession, data: dict[str, Any]) -> None:
    """``club.closed``: nobody is a member of a closed club any more."""
    await session.execute(
        update(ClubMembership)
        .where(
            ClubMembership.club_id == uuid.UUID(data["club_id"]),
            ClubMembership.seq < int(data["seq"]),
            ClubMembership.role.is_not(None),
        )
        .values(role=None, seq=int(data["seq"]))
    )


async def apply_union(session: AsyncSession, data: dict[str, Any], *, member: bool) -> None:
    statement = insert(ClubUnion).values(
        union_id=uuid.UUID(data["union_id"]), club_id=uuid.UUID(data["club_id"]), member=member, seq=int(data["seq"])
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[ClubUnion.union_id, ClubUnion.club_id],
            set_={"member": statement.excluded.member, "seq": statement.excluded.seq},
            where=ClubUnion.seq < statement.excluded.seq,
        )
    )


async def role_in(session: AsyncSession, club_id: uuid.UUID, player_id: uuid.UUID) -> str | None:
    row = await session.get(ClubMembership, (club_id, player_id))
    return None if row is None else row.role


async def may_enter(session: AsyncSession, row: TournamentRow, player_id: uuid.UUID) -> bool:
    """A public tournament: anyone. A club tournament: its club's members. A union tournament: the members
    of any club in the union."""
    if row.club_id is None:
        return True
    if row.union_id is None:
        return await role_in(session, row.club_id, player_id) is not None
    found = await session.execute(
        select(ClubMembership.club_id)
        .join(ClubUnion, ClubUnion.club_id == ClubMembership.club_id)
        .where(
            ClubUnion.union_id == row.union_id,
            ClubUnion.member.is_(True),
            ClubMembership.player_id == player_id,
            ClubMembership.role.is_not(None),
        )
        .limit(1)
    )
    return found.first() is not None


async def check_may_enter(session: AsyncSession, row: TournamentRow, player_id: uuid.UUID) -> None:
    if not await may_enter(session, row, player_id):
        raise Forbidden(NOT_A_MEMBER)


async def club_scope(
    session: AsyncSession, principal: Principal, club_id: uuid.UUID | None, *, union_wide: bool
) -> uuid.UUID | None:
    """Who may create a tournament: a platform director or admin any; a club's owner or managers (by the
    projection) one for their club (``union_wide``: for the members of every club of the club's union, which
    is returned)."""
    if club_id is None:
        if union_wide:
            raise Conflict("a union-wide tournament is a club's: name the club")
        if not principal.roles & DIRECTORS:
            raise Forbidden("requires one of the roles: admin, tournament_director")
        return None
    if not principal.roles & DIRECTORS and await role_in(session, club_id, uuid.UUID(principal.subject)) not in STAFF:
        raise Forbidden("only the club's owner and managers create its tournaments")
    if not union_wide:
        return None
    union_id = await session.scalar(
        select(ClubUnion.union_id).where(ClubUnion.club_id == club_id, ClubUnion.member.is_(True)).limit(1)
    )
    if union_id is None:
        raise Conflict("the club is in no union")
    return union_id


async def check_director(session: AsyncSession, principal: Principal, tournament_id: uuid.UUID) -> None:
    """A platform director or admin directs every tournament; a club's owner and managers their club's."""
    if principal.roles & DIRECTORS:
        return
    club_id = await session.scalar(select(TournamentRow.club_id).where(TournamentRow.id == tournament_id))
    if club_id is None or await role_in(session, club_id, uuid.UUID(principal.subject)) not in STAFF:
        raise Forbidden("only a tournament director, or the owner and managers of its club, direct it")


async def unregister_leavers(
    session: AsyncSession,
    *,
    player_id: uuid.UUID | None = None,
    club_id: uuid.UUID | None = None,
    union_id: uuid.UUID | None = None,
) -> int:
    """Registrations, before the start, of players who may no longer enter (a member who left or was kicked
    or banned, a closed club's members, the members of a club that left the union): ``held -> voiding``
    under the tournament's row lock (a start cannot take them meanwhile); the reconciler voids the hold
    (``late_entry.drive``), which gives the money back. After the start an entry stays: its buy-in is in the
    pool and its chips in play. Returns how many were unregistered."""
    scope = []
    if player_id is not None:
        scope.append(Registration.player_id == player_id)
    if club_id is not None:
        scope.append(TournamentRow.club_id == club_id)
    if union_id is not None:
        scope.append(TournamentRow.union_id == union_id)
    found = await session.execute(
        select(TournamentRow.id, Registration.id, Registration.player_id)
        .join(Registration, Registration.tournament_id == TournamentRow.id)
        .where(
            TournamentRow.club_id.is_not(None),
            TournamentRow.status == "registering",
            Registration.status == "held",
            *scope,
        )
        .order_by(TournamentRow.id)
    )
    unregistered = 0
    for tournament_id, registration_id, player in found.tuples().all():
        row = await session.scalar(select(TournamentRow).where(TournamentRow.id == tournament_id).with_for_update())
        if row is None or row.status != "registering" or await may_enter(session, row, player):
            continue
        if await advance(session, Registration, registration_id, "held", "voiding", failure=LEFT):
            unregistered += 1
    return unregistered
