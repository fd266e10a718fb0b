"""Cash tables and seats: thin handlers over services/tables.py and services/seating.py."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Controller, MediaType, Response, delete, get, post
from litestar.params import FromPath, FromQuery, JSONBody, Parameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from tablium_kit.auth import BEARER, caller, requires_roles
from tablium_kit.deps import DbReader, DbSession
from tablium_kit.errors import Forbidden
from tablium_kit.inputs import exact
from tablium_kit.money import Amount, format_amount, parse_amount
from tablium_lobby.api.schemas import LeaveOut, SeatOut, SitIn, TableIn, TableOut, TableSettingsIn, TopUpIn
from tablium_lobby.db.models import CashTable, Seat
from tablium_lobby.domain.stakes import Stakes
from tablium_lobby.services.runtime import SeatingDep
from tablium_lobby.services.stats import lobby_stats
from tablium_lobby.services.tables import (
    NewTable,
    TableFilter,
    active_seats,
    close_table,
    create_table,
    get_table,
    read_tables_json,
    stakes_of,
)

ADMIN = requires_roles("admin")


def player_id() -> UUID:
    """The calling player's id (a player's token names a UUID; anything else plays nowhere)."""
    try:
        return UUID(caller().subject)
    except ValueError:
        raise Forbidden("only players sit at tables") from None


def seat_out(seat: Seat) -> SeatOut:
    return SeatOut(
        seat=seat.seat_no,
        player_id=seat.player_id,
        stack=format_amount(seat.stack),
        status=seat.status,
        sitting_out=seat.sitting_out,
        leave_requested=seat.leave_requested,
    )


def table_out(table: CashTable, taken: int, seats: list[Seat] | None = None) -> TableOut:
    stakes = stakes_of(table)
    return TableOut(
        id=table.id,
        name=table.name,
        game=table.game,
        asset=table.asset,
        status=table.status,
        small_blind=format_amount(table.small_blind),
        big_blind=format_amount(table.big_blind),
        ante=format_amount(table.ante),
        seats=table.seat_count,
        free_seats=table.seat_count - taken,
        min_buy_in=format_amount(stakes.min_buy_in),
        max_buy_in=format_amount(stakes.max_buy_in),
        rake_bps=table.rake_bps,
        rake_cap=format_amount(table.rake_cap),
        action_clock_s=table.action_clock_s,
        time_bank_s=table.time_bank_s,
        time_bank_refill_s=table.time_bank_refill_s,
        time_bank_refill_hands=table.time_bank_refill_hands,
        private=table.private,
        club_id=table.club_id,
        union_id=table.union_id,
        seq=table.seq,
        hands_dealt=table.hands_dealt,
        created_at=table.created_at,
        # A private table is listed without its players: who sits there is for its host and members
        # (GET …/state), not for anyone browsing the lobby.
        players=[] if table.private else [seat_out(s) for s in seats or []],
    )


def new_table(data: TableSettingsIn, *, private: bool, host_id: UUID) -> NewTable:
    stakes = Stakes(
        small_blind=parse_amount(data.small_blind),
        big_blind=parse_amount(data.big_blind),
        ante=parse_amount(data.ante),
        seat_count=data.seats,
        min_buy_in_bb=data.min_buy_in_bb,
        max_buy_in_bb=data.max_buy_in_bb,
        rake_bps=data.rake_bps,
        rake_cap=parse_amount(data.rake_cap),
    )
    return NewTable(
        name=data.name,
        stakes=stakes,
        action_clock_s=data.action_clock_s,
        time_bank_s=data.time_bank_s,
        time_bank_refill_s=data.time_bank_refill_s,
        time_bank_refill_hands=data.time_bank_refill_hands,
        private=private,
        host_id=host_id,
    )


class TableController(Controller):
    path = "/api/v1/tables"
    tags = ["tables"]

    @post("/", status_code=HTTP_201_CREATED, security=BEARER, guards=[ADMIN], summary="Open a cash table (admin)")
    async def create(self, data: JSONBody[TableIn], db_session: DbSession, seating: SeatingDep) -> TableOut:
        new = new_table(data, private=data.private, host_id=player_id())
        table = await create_table(db_session, seating.wallet, seating.settings.asset, new)
        await db_session.commit()
        await seating.seats_freed(table.id)  # offered to its stake's waiting list before the answer
        return table_out(table, 0)

    @get("/", summary="Cash tables, fullest first, with filters")
    async def list_tables(
        self,
        db_reader: DbReader,
        small_blind: FromQuery[Amount | None] = None,
        big_blind: FromQuery[Amount | None] = None,
        private: FromQuery[bool | None] = None,
        game: FromQuery[Annotated[str, Parameter(pattern=exact("[a-z]{1,16}"))] | None] = None,
        min_free_seats: FromQuery[Annotated[int, Parameter(ge=0, le=10)] | None] = None,
        include_closed: FromQuery[bool] = False,
        limit: FromQuery[Annotated[int, Parameter(ge=1, le=200)]] = 50,
        offset: FromQuery[Annotated[int, Parameter(ge=0, le=1_000_000)]] = 0,
    ) -> Response[list[TableOut]]:
        f = TableFilter(
            small_blind=None if small_blind is None else parse_amount(small_blind),
            big_blind=None if big_blind is None else parse_amount(big_blind),
            private=private,
            min_free_seats=min_free_seats,
            game=game,
            include_closed=include_closed,
        )
        # Postgres writes the answer (services/tables.py): sent as it comes, documented as list[TableOut].
        body = await read_tables_json(db_reader, f, limit=limit, offset=offset)
        return Response(body, media_type=MediaType.JSON)  # type: ignore[arg-type]  # the encoded list

    @get("/{table_id:uuid}", summary="One table with its seats")
    async def get_one(self, table_id: FromPath[UUID], db_session: DbSession) -> TableOut:
        table = await get_table(db_session, table_id)
        seats = await active_seats(db_session, table_id)
        return table_out(table, len(seats), seats)

    @post(
        "/{table_id:uuid}/close",
        status_code=HTTP_200_OK,
        security=BEARER,
        guards=[ADMIN],
        summary="Close a table: no new seats; every seat cashed out (after the hand in progress)",
    )
    async def close(self, table_id: FromPath[UUID], db_session: DbSession, seating: SeatingDep) -> TableOut:
        table, seats = await close_table(db_session, table_id)
        await db_session.commit()
        await seating.cash_out_idle(table_id)
        await seating.notify(table_id, {"type": "table-closing"})
        await db_session.refresh(table)
        seats = await active_seats(db_session, table_id)
        return table_out(table, len(seats), seats)


class LobbyStats(msgspec.Struct, kw_only=True):
    tables_open: int
    tables_playing: int
    seated_players: int
    hands_last_hour: list[dict[str, Any]]


class StatsController(Controller):
    path = "/api/v1/lobby"
    tags = ["lobby"]

    @get("/stats", summary="Tables open and playing, seated players, hands in the last hour per stake")
    async def stats(self, db_session: DbSession) -> LobbyStats:
        return LobbyStats(**await lobby_stats(db_session))


class SeatController(Controller):
    path = "/api/v1/tables/{table_id:uuid}/seats"
    tags = ["seats"]
    security = BEARER

    @post("/", status_code=HTTP_201_CREATED, summary="Sit down with a buy-in (a wallet hold posted into escrow)")
    async def sit_down(self, table_id: FromPath[UUID], data: JSONBody[SitIn], seating: SeatingDep) -> SeatOut:
        seat = await seating.sit_down(table_id, player_id(), data.seat, parse_amount(data.buy_in))
        return seat_out(seat)

    @post("/me/top-up", status_code=HTTP_200_OK, summary="Add chips between hands, up to the maximum buy-in")
    async def top_up(self, table_id: FromPath[UUID], data: JSONBody[TopUpIn], seating: SeatingDep) -> SeatOut:
        seat = await seating.top_up(table_id, player_id(), parse_amount(data.amount))
        return seat_out(seat)

    @delete("/me", status_code=HTTP_200_OK, summary="Leave and cash out (after the hand if dealt in)")
    async def leave(self, table_id: FromPath[UUID], seating: SeatingDep) -> LeaveOut:
        result = await seating.leave(table_id, player_id())
        return LeaveOut(status=result.status, cashed_out=format_amount(result.cashed_out))  # type: ignore[arg-type]
