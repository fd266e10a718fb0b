"""Profiles and preferences."""

from __future__ import annotations

from uuid import UUID

from litestar import Controller, get, patch, post, put
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_200_OK

from tablium_kit.auth import BEARER, caller, requires_roles
from tablium_kit.deps import DbReader, DbSession
from tablium_player.api.schemas import OwnProfile, Preferences, ProfileUpdate, PublicProfile, RolesUpdate
from tablium_player.service import AccountsDep, own_profile, preferences_of, public_profile


class MyProfileController(Controller):
    path = "/api/v1/players/me"
    tags = ["players"]
    security = BEARER

    @get(summary="My profile")
    async def get_me(
        self,
        db_reader: DbReader,
        accounts: AccountsDep,
    ) -> OwnProfile:
        player_id = UUID(caller().subject)
        return own_profile(*await accounts.read_profile(db_reader, player_id))

    @patch(summary="Change my profile")
    async def update_me(
        self,
        data: JSONBody[ProfileUpdate],
        db_session: DbSession,
        db_reader: DbReader,
        accounts: AccountsDep,
    ) -> OwnProfile:
        player_id = UUID(caller().subject)
        player = await accounts.update_profile(db_session, player_id, data)
        return own_profile(player, await accounts.winnings(db_reader, player_id))

    @get("/preferences", summary="My preferences")
    async def get_preferences(
        self,
        db_reader: DbReader,
        accounts: AccountsDep,
    ) -> Preferences:
        return preferences_of(await accounts.read(db_reader, UUID(caller().subject)))

    @put("/preferences", summary="Replace my preferences")
    async def put_preferences(
        self,
        data: JSONBody[Preferences],
        db_session: DbSession,
        accounts: AccountsDep,
    ) -> Preferences:
        return await accounts.set_preferences(db_session, UUID(caller().subject), data)


class PublicProfileController(Controller):
    path = "/api/v1/players"
    tags = ["players"]

    @get("/{player_id:uuid}", summary="A player's public profile")
    async def get_player(self, player_id: FromPath[UUID], db_reader: DbReader, accounts: AccountsDep) -> PublicProfile:
        return public_profile(*await accounts.read_profile(db_reader, player_id))


class AdminController(Controller):
    path = "/api/v1/admin/players"
    tags = ["admin"]
    security = BEARER
    guards = [requires_roles("admin")]

    @post("/{player_id:uuid}/roles", status_code=HTTP_200_OK, summary="Set a player's roles")
    async def set_roles(
        self,
        player_id: FromPath[UUID],
        data: JSONBody[RolesUpdate],
        db_session: DbSession,
        db_reader: DbReader,
        accounts: AccountsDep,
    ) -> OwnProfile:
        player = await accounts.set_roles(db_session, player_id, data.roles)
        return own_profile(player, await accounts.winnings(db_reader, player_id))
