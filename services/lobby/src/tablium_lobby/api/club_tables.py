"""Club tables: a club's owner or manager opens a table only its members (or its union's) play at."""

from __future__ import annotations

from dataclasses import replace
from uuid import UUID

import msgspec
from litestar import Controller, post
from litestar.params import JSONBody
from litestar.status_codes import HTTP_201_CREATED

from tablium_kit.auth import BEARER
from tablium_kit.deps import DbSession
from tablium_lobby.api.schemas import TableOut, TableSettingsIn
from tablium_lobby.api.tables import new_table, player_id, table_out
from tablium_lobby.services.clubs import club_table_scope
from tablium_lobby.services.runtime import SeatingDep
from tablium_lobby.services.tables import create_table


class ClubTableIn(TableSettingsIn, kw_only=True):
    club_id: UUID
    union_wide: bool = msgspec.field(default=False)


class ClubTableController(Controller):
    path = "/api/v1/tables/club"
    tags = ["club tables"]
    security = BEARER

    @post(
        status_code=HTTP_201_CREATED,
        summary="Open a club table (the club's owner or a manager): members only; union_wide: the union's clubs'",
    )
    async def create(self, data: JSONBody[ClubTableIn], db_session: DbSession, seating: SeatingDep) -> TableOut:
        union_id = await club_table_scope(db_session, data.club_id, player_id(), union_wide=data.union_wide)
        # A club table has no host: the club's staff run it, the projection says who plays.
        new = replace(
            new_table(data, private=False, host_id=player_id()), host_id=None, club_id=data.club_id, union_id=union_id
        )
        table = await create_table(db_session, seating.wallet, seating.settings.asset, new)
        return table_out(table, 0)
