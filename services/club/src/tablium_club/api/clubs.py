"""Clubs: create, list, read, settings, close, ownership, the audit trail."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

import msgspec
from litestar import Controller, get, patch, post
from litestar.datastructures import State
from litestar.params import FromPath, JSONBody, Parameter
from litestar.status_codes import HTTP_200_OK

from tablium_club.api.schemas import AuditView, ClubCreate, ClubUpdate, ClubView, MemberView, TransferOwnership
from tablium_club.api.views import audit_view, club_view, member_view
from tablium_club.domain.permissions import Action
from tablium_club.services import audit, clubs
from tablium_club.services.access import acting
from tablium_kit.auth import BEARER, caller
from tablium_kit.deps import DbSession


def me() -> UUID:
    return UUID(caller().subject)


class ClubController(Controller):
    path = "/api/v1/clubs"
    tags = ["clubs"]
    security = BEARER

    @post(summary="Create a club (you own it)")
    async def create(self, data: JSONBody[ClubCreate], db_session: DbSession, state: State) -> ClubView:
        settings = msgspec.to_builtins(data)
        settings["default_table_rules"] = msgspec.to_builtins(data.default_table_rules)
        max_owned: int = state.settings.max_clubs_per_owner
        club, member = await clubs.create_club(db_session, me(), settings, max_owned=max_owned)
        return club_view(club, member)

    @get(summary="Public clubs, newest first")
    async def public(
        self, db_session: DbSession, limit: Annotated[int, Parameter(ge=1, le=200)] = 50
    ) -> list[ClubView]:
        return [club_view(club, None) for club in await clubs.public_clubs(db_session, limit=limit)]

    @get("/mine", summary="The clubs I am a member of, with my role")
    async def mine(self, db_session: DbSession) -> list[ClubView]:
        return [club_view(club, member) for club, member in await clubs.my_clubs(db_session, me())]

    @get("/{club_id:uuid}", summary="A club (a private one: members only)")
    async def read(self, club_id: FromPath[UUID], db_session: DbSession) -> ClubView:
        club, member = await clubs.read_club(db_session, club_id, me())
        return club_view(club, member)

    @patch("/{club_id:uuid}", summary="Change the club's settings (owner, managers)")
    async def update(self, club_id: FromPath[UUID], data: JSONBody[ClubUpdate], db_session: DbSession) -> ClubView:
        changes = {
            name: msgspec.to_builtins(value)
            for name in ClubUpdate.__struct_fields__
            if (value := getattr(data, name)) is not msgspec.UNSET
        }
        club, member = await clubs.update_settings(db_session, club_id, me(), changes)
        return club_view(club, member)

    @post("/{club_id:uuid}/close", status_code=HTTP_200_OK, summary="Close the club (owner)")
    async def close(self, club_id: FromPath[UUID], db_session: DbSession) -> ClubView:
        club = await clubs.close_club(db_session, club_id, me())
        return club_view(club, None)

    @post("/{club_id:uuid}/transfer", status_code=HTTP_200_OK, summary="Hand the club to another member (owner)")
    async def transfer(
        self, club_id: FromPath[UUID], data: JSONBody[TransferOwnership], db_session: DbSession
    ) -> MemberView:
        return member_view(await clubs.transfer_ownership(db_session, club_id, me(), data.new_owner_id))

    @get("/{club_id:uuid}/audit", summary="The audit trail of privileged actions, newest first (owner)")
    async def audit_trail(
        self,
        club_id: FromPath[UUID],
        db_session: DbSession,
        before_id: Annotated[int | None, Parameter(ge=1, le=2**63 - 1)] = None,
        limit: Annotated[int, Parameter(ge=1, le=audit.AUDIT_PAGE)] = 50,
    ) -> list[AuditView]:
        await acting(db_session, club_id, me(), Action.READ_AUDIT, lock=False)
        entries = await audit.entries(db_session, club_id, before_id=before_id, limit=limit)
        return [audit_view(entry) for entry in entries]
