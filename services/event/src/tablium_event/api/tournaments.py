"""Director, player and lobby (public) routes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeAlias
from uuid import UUID

from litestar import Controller, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, Parameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from tablium_event.amounts import decision_to_wire, to_wire
from tablium_event.api.schemas import (
    EntryOut,
    PurchaseIn,
    PurchaseOut,
    RegistrationOut,
    SeatLockIn,
    TieOrderIn,
    ToleranceIn,
    TournamentEdit,
    TournamentIn,
    TournamentOut,
    TournamentSummary,
    UndoIn,
)
from tablium_event.domain.config import TournamentConfig, TournamentRuleError
from tablium_event.services.tournaments import Tournaments
from tablium_kit.auth import BEARER, caller, requires_roles
from tablium_kit.db import Record
from tablium_kit.deps import DbReader, DbSession
from tablium_kit.errors import Conflict, NotFound
from tablium_kit.money import format_amount, parse_amount

if TYPE_CHECKING:  # the rows the use cases return, read here, never queried
    from tablium_event.db.models import Purchase, Registration, TournamentRow

TournamentsDep: TypeAlias = NamedDependency[Tournaments]
# Director routes: a platform director or admin directs any tournament; the owner and managers of a club
# (players, by the event service's projection of club membership) their club's (``check_director``).
DIRECTING = requires_roles("tournament_director", "admin", "player")


async def tournament_out(service: Tournaments, session: DbSession, row: TournamentRow) -> TournamentOut:
    view = await service.view(session, row)
    return TournamentOut(
        id=view.id,
        name=view.name,
        status=view.status,
        version=view.version,
        config=to_wire(view.config),
        entries=view.entries,
        prize_pool=format_amount(view.prize_pool),
        payouts=[format_amount(prize) for prize in view.payouts],
        clock=to_wire(view.clock) if view.clock is not None else None,
        tables=view.tables,
        players_left=view.players_left,
        club_id=view.club_id,
        union_id=view.union_id,
        created_at=view.created_at,
        started_at=view.started_at,
    )


def _unstarted_out(row: Record) -> TournamentOut:
    """``tournament_out`` of a tournament not started yet, from ``Tournaments.read``."""
    return TournamentOut(
        id=row.id,
        name=row.name,
        status=row.status,
        version=row.version,
        config=to_wire(row.config),
        entries=row.live_entries,
        prize_pool=format_amount(0),
        payouts=[],
        clock=None,
        tables=0,
        players_left=None,
        created_at=row.created_at,
        started_at=row.started_at,
    )


def registration_out(reg: Registration) -> RegistrationOut:
    return RegistrationOut(
        id=reg.id,
        tournament_id=reg.tournament_id,
        player_id=reg.player_id,
        entry_no=reg.entry_no,
        status=reg.status,
        amount=format_amount(reg.amount),
        hold_transfer_id=reg.hold_transfer_id,
        entry_id=reg.entry_id,
    )


def purchase_out(purchase: Purchase) -> PurchaseOut:
    return PurchaseOut(
        id=purchase.id,
        tournament_id=purchase.tournament_id,
        player_id=purchase.player_id,
        entry_id=purchase.entry_id,
        kind=purchase.kind,
        status=purchase.status,
        amount=format_amount(purchase.amount),
        transfer_id=purchase.transfer_id,
    )


class TournamentController(Controller):
    """Director routes (private: tournament_director or admin, or a club tournament's club staff) and the
    lobby's public reads, on one path."""

    path = "/api/v1/tournaments"
    tags = ["tournaments"]

    @post(security=BEARER, guards=[DIRECTING], summary="Create a tournament (draft)")
    async def create(
        self, data: JSONBody[TournamentIn], db_session: DbSession, tournaments: TournamentsDep
    ) -> TournamentOut:
        row = await tournaments.create(
            db_session,
            name=data.name,
            config=data.to_config(),
            director=caller(),
            club_id=data.club_id,
            union_wide=data.union_wide,
        )
        return await tournament_out(tournaments, db_session, row)

    @patch("/{tournament_id:uuid}", security=BEARER, guards=[DIRECTING], summary="Edit a tournament before it starts")
    async def edit(
        self,
        tournament_id: FromPath[UUID],
        data: JSONBody[TournamentEdit],
        db_session: DbSession,
        tournaments: TournamentsDep,
    ) -> TournamentOut:
        await tournaments.check_director(db_session, caller(), tournament_id)
        current = await tournaments.get(db_session, tournament_id)
        seed = TournamentConfig.from_dict(current.config).seed
        config = data.config.to_config(seed) if data.config is not None else None
        row = await tournaments.edit(db_session, tournament_id, name=data.name, config=config)
        return await tournament_out(tournaments, db_session, row)

    @post(
        "/{tournament_id:uuid}/open",
        status_code=HTTP_200_OK,
        security=BEARER,
        guards=[DIRECTING],
        summary="Open registration",
    )
    async def open_registration(
        self, tournament_id: FromPath[UUID], db_session: DbSession, tournaments: TournamentsDep
    ) -> TournamentOut:
        await tournaments.check_director(db_session, caller(), tournament_id)
        row = await tournaments.open_registration(db_session, tournament_id)
        return await tournament_out(tournaments, db_session, row)

    @post(
        "/{tournament_id:uuid}/start",
        status_code=HTTP_200_OK,
        security=BEARER,
        guards=[DIRECTING],
        summary="Start: buy-ins into the pool, seats drawn",
    )
    async def start(
        self, tournament_id: FromPath[UUID], db_session: DbSession, tournaments: TournamentsDep
    ) -> TournamentOut:
        await tournaments.check_director(db_session, caller(), tournament_id)
        row = await tournaments.start(db_session, tournament_id)
        return await tournament_out(tournaments, db_session, row)

    @post(
        "/{tournament_id:uuid}/pause",
        status_code=HTTP_200_OK,
        security=BEARER,
        guards=[DIRECTING],
        summary="Pause the clock and the tables",
    )
    async def pause(
        self, tournament_id: FromPath[UUID], db_session: DbSession, tournaments: TournamentsDep
    ) -> TournamentOut:
        await tournaments.check_director(db_session, caller(), tournament_id)
        row = await tournaments.command(db_session, tournament_id, "pause")
        return await tournament_out(tournaments, db_session, row)

    @post(
        "/{tournament_id:uuid}/resume",
        status_code=HTTP_200_OK,
        security=BEARER,
        guards=[DIRECTING],
        summary="Resume after a pause",
    )
    async def resume(
        self, tournament_id: FromPath[UUID], db_session: DbSession, tournaments: TournamentsDep
    ) -> TournamentOut:
        await tournaments.check_director(db_session, caller(), tournament_id)
        row = await tournaments.command(db_session, tournament_id, "resume")
        return await tournament_out(tournaments, db_session, row)

    @post(
        "/{tournament_id:uuid}/cancel",
        status_code=HTTP_200_OK,
        security=BEARER,
        guards=[DIRECTING],
        summary="Cancel: every entry refunded",
    )
    async def cancel(
        self, tournament_id: FromPath[UUID], db_session: DbSession, tournaments: TournamentsDep
    ) -> TournamentOut:
        await tournaments.check_director(db_session, caller(), tournament_id)
        row = await tournaments.cancel(db_session, tournament_id)
        return await tournament_out(tournaments, db_session, row)

    @post(
        "/{tournament_id:uuid}/undo",
        status_code=HTTP_200_OK,
        security=BEARER,
        guards=[DIRECTING],
        summary="Undo the last bust-out or move",
    )
    async def undo(
        self, tournament_id: FromPath[UUID], data: JSONBody[UndoIn], db_session: DbSession, tournaments: TournamentsDep
    ) -> TournamentOut:
        await tournaments.check_director(db_session, caller(), tournament_id)
        row = await tournaments.command(
            db_session,
            tournament_id,
            "undo",
            what=data.what,
            stack=None if data.stack is None else parse_amount(data.stack),
            from_entry=data.from_entry,
        )
        return await tournament_out(tournaments, db_session, row)

    @post(
        "/{tournament_id:uuid}/ties",
        status_code=HTTP_200_OK,
        security=BEARER,
        guards=[DIRECTING],
        summary="Order a tie: distinct places (and prizes) for players busted in the same hand",
    )
    async def order_tie(
        self,
        tournament_id: FromPath[UUID],
        data: JSONBody[TieOrderIn],
        db_session: DbSession,
        tournaments: TournamentsDep,
    ) -> TournamentOut:
        await tournaments.check_director(db_session, caller(), tournament_id)
        row = await tournaments.order_tie(db_session, tournament_id, data.entries)
        return await tournament_out(tournaments, db_session, row)

    @post(
        "/{tournament_id:uuid}/seat-locks",
        status_code=HTTP_200_OK,
        security=BEARER,
        guards=[DIRECTING],
        summary="Lock or unlock a seat (no balancing moves)",
    )
    async def seat_lock(
        self,
        tournament_id: FromPath[UUID],
        data: JSONBody[SeatLockIn],
        db_session: DbSession,
        tournaments: TournamentsDep,
    ) -> TournamentOut:
        await tournaments.check_director(db_session, caller(), tournament_id)
        row = await tournaments.command(db_session, tournament_id, "lock", entry=data.entry, locked=data.locked)
        return await tournament_out(tournaments, db_session, row)

    @post(
        "/{tournament_id:uuid}/tolerance",
        status_code=HTTP_200_OK,
        security=BEARER,
        guards=[DIRECTING],
        summary="Set the balancing tolerance",
    )
    async def tolerance(
        self,
        tournament_id: FromPath[UUID],
        data: JSONBody[ToleranceIn],
        db_session: DbSession,
        tournaments: TournamentsDep,
    ) -> TournamentOut:
        await tournaments.check_director(db_session, caller(), tournament_id)
        row = await tournaments.command(db_session, tournament_id, "tolerance", tolerance=data.tolerance)
        return await tournament_out(tournaments, db_session, row)

    @get(
        "/{tournament_id:uuid}/decisions",
        security=BEARER,
        guards=[DIRECTING],
        summary="The balancing/elimination decision log, with reasons",
    )
    async def decisions(
        self,
        tournament_id: FromPath[UUID],
        db_session: DbSession,
        tournaments: TournamentsDep,
        since: Annotated[int, Parameter(ge=0)] = 0,
        limit: Annotated[int, Parameter(ge=1, le=1000)] = 200,
    ) -> list[dict[str, Any]]:
        await tournaments.check_director(db_session, caller(), tournament_id)
        engine = await tournaments.engine(db_session, tournament_id)
        return [decision_to_wire(row) for row in engine.decisions(since)[:limit]] if engine else []

    @get(
        "/{tournament_id:uuid}/deal",
        security=BEARER,
        guards=[DIRECTING],
        summary="A deal offer for the players left: ICM (Malmuth-Harville) or chip chop",
    )
    async def deal(
        self,
        tournament_id: FromPath[UUID],
        db_session: DbSession,
        tournaments: TournamentsDep,
        method: FromQuery[Literal["icm", "chip-chop"]] = "icm",
    ) -> list[dict[str, Any]]:
        await tournaments.check_director(db_session, caller(), tournament_id)
        engine = await tournaments.engine(db_session, tournament_id)
        if engine is None:
            raise Conflict("the tournament has not started")
        try:
            return to_wire(engine.deal_offer(method))
        except TournamentRuleError as exc:
            raise Conflict(str(exc)) from exc

    # -- the lobby: public reads --------------------------------------------------------------

    @get(summary="Tournaments, newest first")
    async def list_tournaments(
        self,
        db_session: DbSession,
        tournaments: TournamentsDep,
        limit: Annotated[int, Parameter(ge=1, le=200)] = 50,
        club_id: FromQuery[UUID | None] = None,
    ) -> list[TournamentSummary]:
        return [
            TournamentSummary(
                id=row.id,
                name=row.name,
                status=row.status,
                buy_in=format_amount(row.config["buy_in"]),
                fee=format_amount(row.config["fee"]),
                starts_with=format_amount(row.config["starting_stack"]),
                created_at=row.created_at,
                club_id=row.club_id,
                union_id=row.union_id,
            )
            for row in await tournaments.newest(db_session, limit, club_id=club_id)
        ]

    @get("/{tournament_id:uuid}", summary="A tournament: status, entries, pool, payouts, level and clock")
    async def get_tournament(
        self, tournament_id: FromPath[UUID], db_reader: DbReader, db_session: DbSession, tournaments: TournamentsDep
    ) -> TournamentOut:
        # Before the start (no engine) one statement answers; a started one is answered from its engine.
        row = await tournaments.read(db_reader, tournament_id)
        if row.started_at is None:
            return _unstarted_out(row)
        return await tournament_out(tournaments, db_session, await tournaments.get(db_session, tournament_id))

    @get("/{tournament_id:uuid}/entries", summary="Who is registered: players, entry numbers, status, in order")
    async def entries(
        self,
        tournament_id: FromPath[UUID],
        db_session: DbSession,
        tournaments: TournamentsDep,
        offset: Annotated[int, Parameter(ge=0, le=10_000_000)] = 0,
        limit: Annotated[int, Parameter(ge=1, le=1000)] = 200,
    ) -> list[EntryOut]:
        return [
            EntryOut(
                player_id=reg.player_id,
                entry_no=reg.entry_no,
                status="entered" if reg.status == "posted" else "registered",
                registered_at=reg.created_at,
                entry_id=reg.entry_id,
            )
            for reg in await tournaments.registered(db_session, tournament_id, offset=offset, limit=limit)
        ]

    @get("/{tournament_id:uuid}/tables", summary="Tables with seats, stacks, button and blinds")
    async def tables(
        self, tournament_id: FromPath[UUID], db_session: DbSession, tournaments: TournamentsDep
    ) -> list[dict[str, Any]]:
        engine = await tournaments.engine(db_session, tournament_id)
        return [to_wire(engine.table_view(t)) for t in sorted(engine.tables)] if engine else []

    @get("/{tournament_id:uuid}/tables/{table:int}", summary="One table")
    async def table(
        self, tournament_id: FromPath[UUID], table: FromPath[int], db_session: DbSession, tournaments: TournamentsDep
    ) -> dict[str, Any]:
        engine = await tournaments.engine(db_session, tournament_id)
        if engine is None or table not in engine.tables:
            raise NotFound("no such table")
        return to_wire(engine.table_view(table))

    @get("/{tournament_id:uuid}/standings", summary="Standings: live stacks, then places and prizes")
    async def standings(
        self,
        tournament_id: FromPath[UUID],
        db_session: DbSession,
        tournaments: TournamentsDep,
        limit: Annotated[int, Parameter(ge=1, le=10_000)] = 500,
    ) -> list[dict[str, Any]]:
        engine = await tournaments.engine(db_session, tournament_id)
        return to_wire(engine.standings()[:limit]) if engine else []


class RegistrationController(Controller):
    path = "/api/v1/tournaments/{tournament_id:uuid}/registrations"
    tags = ["tournaments: players"]
    security = BEARER

    @post(status_code=HTTP_201_CREATED, summary="Register (a hold of buy-in + fee on my wallet)")
    async def register(
        self, tournament_id: FromPath[UUID], db_session: DbSession, tournaments: TournamentsDep
    ) -> RegistrationOut:
        reg = await tournaments.register(db_session, tournament_id, UUID(caller().subject))
        return registration_out(reg)

    @delete("/me", status_code=HTTP_200_OK, summary="Unregister (the hold is voided)")
    async def unregister(
        self, tournament_id: FromPath[UUID], db_session: DbSession, tournaments: TournamentsDep
    ) -> RegistrationOut:
        reg = await tournaments.unregister(db_session, tournament_id, UUID(caller().subject))
        return registration_out(reg)


class PurchaseController(Controller):
    """Rebuys and add-ons of the caller's live entry, paid from their wallet into the prize pool."""

    path = "/api/v1/tournaments/{tournament_id:uuid}"
    tags = ["tournaments: players"]
    security = BEARER

    @post(
        "/rebuys",
        status_code=HTTP_201_CREATED,
        summary="Buy a rebuy (buy-in, bounty part and fee; chips after the current hand)",
    )
    async def rebuy(
        self,
        tournament_id: FromPath[UUID],
        data: JSONBody[PurchaseIn],
        db_session: DbSession,
        tournaments: TournamentsDep,
    ) -> PurchaseOut:
        purchase = await tournaments.buy(db_session, tournament_id, UUID(caller().subject), "rebuy", data.request_id)
        return purchase_out(purchase)

    @post(
        "/addons",
        status_code=HTTP_201_CREATED,
        summary="Buy the add-on (the buy-in; at the break after the rebuy period)",
    )
    async def addon(
        self,
        tournament_id: FromPath[UUID],
        data: JSONBody[PurchaseIn],
        db_session: DbSession,
        tournaments: TournamentsDep,
    ) -> PurchaseOut:
        purchase = await tournaments.buy(db_session, tournament_id, UUID(caller().subject), "addon", data.request_id)
        return purchase_out(purchase)
