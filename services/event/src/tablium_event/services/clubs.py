"""Club tournaments (docs/clubs.md, "Club tournaments"): the event service's own projection of club
membership, fed by the club service's events (``events/handlers.py``); who may enter a club tournament, who
directs it, and the registrations of members who left before the start.

No call to the club service: the projection is the kit's (``tablium_kit.club_projection``, shared with the
lobby's club tables) on this service's own tables, kept by the consumer. Each row carries the seq of the
newest event applied to it, so an older event arriving late changes nothing.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tablium_event.db.models import CLUBS, Registration, TournamentRow
from tablium_event.db.steps import advance
from tablium_kit.auth import Principal
from tablium_kit.club_projection import ClubProjection, Leavers
from tablium_kit.errors import Conflict, Forbidden

STAFF = ("owner", "manager")
DIRECTORS = frozenset({"tournament_director", "admin"})
NOT_A_MEMBER = "a club tournament: only members of its club (or of its union's clubs) may enter"
LEFT = "unregistered: no longer a member of the tournament's club"

# Kept by the consumer from the club service's events (``events/handlers.py``), in this service's tables.
PROJECTION = ClubProjection(CLUBS)


async def may_enter(session: AsyncSession, row: TournamentRow, player_id: uuid.UUID) -> bool:
    """A public tournament: anyone. A club tournament: its club's members. A union tournament: the members
    of any club in the union."""
    if row.club_id is None:
        return True
    return await PROJECTION.is_member(session, player_id, club_id=row.club_id, union_id=row.union_id)


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
    if (
        not principal.roles & DIRECTORS
        and await PROJECTION.role_in(session, club_id, uuid.UUID(principal.subject)) not in STAFF
    ):
        raise Forbidden("only the club's owner and managers create its tournaments")
    if not union_wide:
        return None
    union_id = await PROJECTION.union_of(session, club_id)
    if union_id is None:
        raise Conflict("the club is in no union")
    return union_id


async def check_director(session: AsyncSession, principal: Principal, tournament_id: uuid.UUID) -> None:
    """A platform director or admin directs every tournament; a club's owner and managers their club's."""
    if principal.roles & DIRECTORS:
        return
    club_id = await session.scalar(select(TournamentRow.club_id).where(TournamentRow.id == tournament_id))
    if club_id is None or await PROJECTION.role_in(session, club_id, uuid.UUID(principal.subject)) not in STAFF:
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


async def unregister(session: AsyncSession, leavers: Leavers) -> None:
    """The projection's hook after a leave, a close or a union's loss of a club: their registrations before
    the start go back (``unregister_leavers``)."""
    if leavers.club_id is not None:
        await unregister_leavers(session, club_id=leavers.club_id)
    elif leavers.union_id is not None:
        await unregister_leavers(session, union_id=leavers.union_id)
    else:
        for player_id in leavers.player_ids:
            await unregister_leavers(session, player_id=player_id)
