"""Internal API for the lobby: finished hands in, instructions out. Never routed by the gateway."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import Controller, post
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_200_OK

from tablium_event.amounts import to_wire
from tablium_event.api.schemas import HandIn
from tablium_event.api.tournaments import TournamentsDep
from tablium_kit.auth import from_services
from tablium_kit.deps import DbSession
from tablium_kit.errors import InvalidInput
from tablium_kit.money import parse_amount


class TablesController(Controller):
    path = "/internal/v1/tournaments"
    tags = ["internal"]
    # The lobby runs the tables and reports their hands.
    security = from_services("lobby")

    @post("/{tournament_id:uuid}/hands", status_code=HTTP_200_OK, summary="A hand finished at a tournament table")
    async def hand_finished(
        self, tournament_id: FromPath[UUID], data: JSONBody[HandIn], db_session: DbSession, tournaments: TournamentsDep
    ) -> dict[str, Any]:
        try:
            stacks = {int(entry): parse_amount(stack) for entry, stack in data.stacks.items()}
            knockouts = {int(entry): hunters for entry, hunters in data.knockouts.items()}
        except ValueError:
            raise InvalidInput("stacks and knockouts are keyed by entry id") from None
        answer = await tournaments.hand_finished(
            db_session, tournament_id, hand_id=data.hand_id, table=data.table, stacks=stacks, knockouts=knockouts
        )
        return to_wire(answer)
