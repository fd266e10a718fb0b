"""Rakeback deals and unions."""

from __future__ import annotations

from uuid import UUID

from litestar import Controller, delete, get, post, put
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_200_OK

from tablium_club.api.clubs import me
from tablium_club.api.schemas import DealUpdate, DealView, UnionClubView, UnionCreate, UnionJoin, UnionShare, UnionView
from tablium_club.api.views import deal_view, union_view
from tablium_club.domain.deals import AgentShare
from tablium_club.services import deals, unions
from tablium_kit.auth import BEARER
from tablium_kit.deps import DbSession


class DealController(Controller):
    path = "/api/v1/clubs/{club_id:uuid}"
    tags = ["deals"]
    security = BEARER

    @put("/deal", summary="Set the club's rakeback deal: a new version (owner, managers)")
    async def set_deal(self, club_id: FromPath[UUID], data: JSONBody[DealUpdate], db_session: DbSession) -> DealView:
        deal = await deals.set_deal(
            db_session,
            club_id,
            me(),
            club_bps=data.club_bps,
            player_bps=data.player_bps,
            agents=[AgentShare(a.agent_id, a.bps, a.player_bps) for a in data.agents],
            effective_from=data.effective_from,
        )
        return deal_view(deal)

    @get("/deal", summary="The newest version of the club's deal")
    async def current(self, club_id: FromPath[UUID], db_session: DbSession) -> DealView:
        return deal_view(await deals.current(db_session, club_id, me()))

    @get("/deals", summary="Every version of the club's deal, newest first")
    async def history(self, club_id: FromPath[UUID], db_session: DbSession) -> list[DealView]:
        return [deal_view(d) for d in await deals.versions(db_session, club_id, me())]

    @post("/union", summary="Found a union with this club as its first member (owner)")
    async def found_union(
        self, club_id: FromPath[UUID], data: JSONBody[UnionCreate], db_session: DbSession
    ) -> UnionView:
        union = await unions.create_union(db_session, club_id, me(), data.name)
        return union_view(*await unions.read(db_session, union.id, me()))


class UnionController(Controller):
    path = "/api/v1/unions/{union_id:uuid}"
    tags = ["unions"]
    security = BEARER

    @get(summary="A union and its clubs (its owner, its clubs' staff)")
    async def read(self, union_id: FromPath[UUID], db_session: DbSession) -> UnionView:
        return union_view(*await unions.read(db_session, union_id, me()))

    @delete(summary="Dissolve the union: every club in it leaves it (the union's owner)")
    async def dissolve(self, union_id: FromPath[UUID], db_session: DbSession) -> None:
        await unions.dissolve(db_session, union_id, me())

    @post("/clubs", status_code=HTTP_200_OK, summary="Ask for a club to join the union (the club's owner)")
    async def ask(self, union_id: FromPath[UUID], data: JSONBody[UnionJoin], db_session: DbSession) -> UnionClubView:
        place = await unions.ask_to_join(db_session, union_id, data.club_id, me())
        return UnionClubView(club_id=place.club_id, status=place.status, union_bps=place.union_bps)  # type: ignore[arg-type]

    @post("/clubs/{club_id:uuid}/approve", status_code=HTTP_200_OK, summary="Let a club in (the union's owner)")
    async def approve(self, union_id: FromPath[UUID], club_id: FromPath[UUID], db_session: DbSession) -> UnionClubView:
        place = await unions.decide(db_session, union_id, club_id, me(), approve=True)
        assert place is not None
        return UnionClubView(club_id=place.club_id, status=place.status, union_bps=place.union_bps)  # type: ignore[arg-type]

    @post("/clubs/{club_id:uuid}/reject", status_code=HTTP_200_OK, summary="Turn a club down (the union's owner)")
    async def reject(self, union_id: FromPath[UUID], club_id: FromPath[UUID], db_session: DbSession) -> None:
        await unions.decide(db_session, union_id, club_id, me(), approve=False)

    @delete("/clubs/{club_id:uuid}", summary="Take a club out of the union (its owner, or the union's)")
    async def remove(self, union_id: FromPath[UUID], club_id: FromPath[UUID], db_session: DbSession) -> None:
        await unions.leave(db_session, union_id, club_id, me())

    @put("/clubs/{club_id:uuid}/share", summary="What the union hands down to a club (the union's owner)")
    async def share(
        self, union_id: FromPath[UUID], club_id: FromPath[UUID], data: JSONBody[UnionShare], db_session: DbSession
    ) -> UnionClubView:
        place = await unions.set_union_share(db_session, union_id, club_id, me(), data.union_bps)
        return UnionClubView(club_id=place.club_id, status=place.status, union_bps=place.union_bps)  # type: ignore[arg-type]
