"""Private tables (seed 002) and WebSocket tickets: thin handlers over services/private.py and services/tickets.py."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

import msgspec
from litestar import Controller, get, post
from litestar.datastructures import State
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from tablium_kit.auth import BEARER, caller
from tablium_kit.deps import DbSession
from tablium_lobby.api.schemas import TableOut, TableSettingsIn
from tablium_lobby.api.tables import new_table, player_id, table_out
from tablium_lobby.services.private import Decision, Membership, PrivateTables
from tablium_lobby.services.runtime import SeatingDep
from tablium_lobby.services.tables import create_table, get_table
from tablium_lobby.services.tickets import WsTickets

MemberStatus = Literal["host", "pending", "approved", "rejected", "kicked", "none"]


class MemberOut(msgspec.Struct, kw_only=True):
    table_id: UUID
    player_id: UUID
    status: MemberStatus
    requested_at: datetime | None = None
    decided_at: datetime | None = None


class TicketOut(msgspec.Struct, kw_only=True):
    ticket: str
    expires_in_s: int
    # Pass it as ?ticket=<ticket>, or as the Sec-WebSocket-Protocol entry "ticket.<ticket>" beside this one.
    subprotocol: str


def member_out(m: Membership) -> MemberOut:
    return MemberOut(
        table_id=m.table_id,
        player_id=m.player_id,
        status=m.status,  # type: ignore[arg-type]
        requested_at=m.requested_at,
        decided_at=m.decided_at,
    )


class PrivateTableController(Controller):
    path = "/api/v1/tables"
    tags = ["private tables"]
    security = BEARER

    @post(
        "/private",
        status_code=HTTP_201_CREATED,
        summary="Open a private table you host (same rules as any table; players join with your approval)",
    )
    async def create(self, data: JSONBody[TableSettingsIn], db_session: DbSession, seating: SeatingDep) -> TableOut:
        new = new_table(data, private=True, host_id=player_id())
        table = await create_table(db_session, seating.wallet, seating.settings.asset, new)
        return table_out(table, 0)

    @post(
        "/{table_id:uuid}/ws-ticket",
        status_code=HTTP_201_CREATED,
        summary="A single-use ticket opening this table's WebSocket (browsers cannot send Authorization there)",
    )
    async def ws_ticket(self, table_id: FromPath[UUID], db_session: DbSession, state: State) -> TicketOut:
        await get_table(db_session, table_id)  # a 404 for no such table
        tickets: WsTickets = state.ws_tickets
        ticket = await tickets.issue(caller(), table_id)
        return TicketOut(ticket=ticket, expires_in_s=tickets.ttl_s, subprotocol="tablium.v1")


class MemberController(Controller):
    path = "/api/v1/tables/{table_id:uuid}/members"
    tags = ["private tables"]
    security = BEARER

    @post("/", status_code=HTTP_200_OK, summary="Ask the host to let you join (repeats change nothing)")
    async def request_join(self, table_id: FromPath[UUID], seating: SeatingDep) -> MemberOut:
        return member_out(await PrivateTables(seating).request_join(table_id, player_id()))

    @get("/", summary="The table's join requests and members (the host only)")
    async def members(
        self,
        table_id: FromPath[UUID],
        seating: SeatingDep,
        status: FromQuery[Literal["pending", "approved", "rejected", "kicked"] | None] = None,
    ) -> list[MemberOut]:
        found = await PrivateTables(seating).members(table_id, player_id(), status)
        return [member_out(m) for m in found]

    @get("/me", summary="Where your request to join stands")
    async def me(self, table_id: FromPath[UUID], seating: SeatingDep) -> MemberOut:
        return member_out(await PrivateTables(seating).my_membership(table_id, player_id()))

    @post("/{player:uuid}/approve", status_code=HTTP_200_OK, summary="The host lets a player sit or watch")
    async def approve(self, table_id: FromPath[UUID], player: FromPath[UUID], seating: SeatingDep) -> MemberOut:
        return await _decide(seating, table_id, player, "approve")

    @post("/{player:uuid}/reject", status_code=HTTP_200_OK, summary="The host turns a join request down")
    async def reject(self, table_id: FromPath[UUID], player: FromPath[UUID], seating: SeatingDep) -> MemberOut:
        return await _decide(seating, table_id, player, "reject")

    @post(
        "/{player:uuid}/kick",
        status_code=HTTP_200_OK,
        summary="The host removes a player: the seat is cashed out (after the hand if dealt in)",
    )
    async def kick(self, table_id: FromPath[UUID], player: FromPath[UUID], seating: SeatingDep) -> MemberOut:
        return await _decide(seating, table_id, player, "kick")


async def _decide(seating: SeatingDep, table_id: UUID, player: UUID, decision: Decision) -> MemberOut:
    return member_out(await PrivateTables(seating).decide(table_id, player_id(), player, decision))
