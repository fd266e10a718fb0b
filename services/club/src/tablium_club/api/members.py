"""Membership: join requests and decisions, invite codes, leaving, kicks, bans, roles and agents."""

from __future__ import annotations

from uuid import UUID

from litestar import Controller, delete, get, post, put
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_204_NO_CONTENT

from tablium_club.api.clubs import me
from tablium_club.api.schemas import (
    AgentTree,
    AgentUpdate,
    BanCreate,
    BanView,
    ClubTableView,
    InviteCreate,
    InviteView,
    JoinRequestCreate,
    JoinRequestView,
    JoinWithCode,
    MemberView,
    RoleUpdate,
)
from tablium_club.api.views import ban_view, invite_view, member_view, request_view
from tablium_club.domain.permissions import Role
from tablium_club.services import invites, membership, roles, tables
from tablium_kit.auth import BEARER
from tablium_kit.deps import DbSession


class MembershipController(Controller):
    path = "/api/v1/clubs"
    tags = ["members"]
    security = BEARER

    @post("/join", status_code=HTTP_200_OK, summary="Join a club with an invite code")
    async def join(self, data: JSONBody[JoinWithCode], db_session: DbSession) -> MemberView:
        return member_view(await membership.join_with_code(db_session, data.code, me()))

    @post("/{club_id:uuid}/requests", summary="Ask to join a public club (asking again returns the same request)")
    async def ask(
        self, club_id: FromPath[UUID], data: JSONBody[JoinRequestCreate], db_session: DbSession
    ) -> JoinRequestView:
        return request_view(await membership.request_to_join(db_session, club_id, me(), data.message))

    @get("/{club_id:uuid}/requests/me", summary="My latest request to join this club")
    async def my_request(self, club_id: FromPath[UUID], db_session: DbSession) -> JoinRequestView:
        return request_view(await membership.my_request(db_session, club_id, me()))

    @delete("/{club_id:uuid}/requests/me", summary="Withdraw my pending request")
    async def withdraw(self, club_id: FromPath[UUID], db_session: DbSession) -> None:
        await membership.cancel_request(db_session, club_id, me())

    @get("/{club_id:uuid}/requests", summary="Pending join requests (owner, managers)")
    async def pending(self, club_id: FromPath[UUID], db_session: DbSession) -> list[JoinRequestView]:
        return [request_view(r) for r in await membership.pending_requests(db_session, club_id, me())]

    @post("/{club_id:uuid}/requests/{request_id:uuid}/approve", status_code=HTTP_200_OK, summary="Approve a request")
    async def approve(
        self, club_id: FromPath[UUID], request_id: FromPath[UUID], db_session: DbSession
    ) -> JoinRequestView:
        return request_view(await membership.decide(db_session, club_id, request_id, me(), approve=True))

    @post("/{club_id:uuid}/requests/{request_id:uuid}/reject", status_code=HTTP_200_OK, summary="Reject a request")
    async def reject(
        self, club_id: FromPath[UUID], request_id: FromPath[UUID], db_session: DbSession
    ) -> JoinRequestView:
        return request_view(await membership.decide(db_session, club_id, request_id, me(), approve=False))

    @get("/{club_id:uuid}/members", summary="The club's members (members only)")
    async def members(self, club_id: FromPath[UUID], db_session: DbSession) -> list[MemberView]:
        return [member_view(m) for m in await membership.members(db_session, club_id, me())]

    @post("/{club_id:uuid}/leave", status_code=HTTP_204_NO_CONTENT, summary="Leave the club (not the owner)")
    async def leave(self, club_id: FromPath[UUID], db_session: DbSession) -> None:
        await membership.leave(db_session, club_id, me())

    @delete("/{club_id:uuid}/members/{player_id:uuid}", summary="Kick a member (owner, managers)")
    async def kick(self, club_id: FromPath[UUID], player_id: FromPath[UUID], db_session: DbSession) -> None:
        await membership.kick(db_session, club_id, me(), player_id)

    @put("/{club_id:uuid}/members/{player_id:uuid}/role", summary="Make a member a manager, an agent or a member")
    async def set_role(
        self, club_id: FromPath[UUID], player_id: FromPath[UUID], data: JSONBody[RoleUpdate], db_session: DbSession
    ) -> MemberView:
        return member_view(await roles.set_role(db_session, club_id, me(), player_id, Role(data.role)))

    @put("/{club_id:uuid}/members/{player_id:uuid}/agent", summary="Put a member under an agent (null: the club)")
    async def set_agent(
        self, club_id: FromPath[UUID], player_id: FromPath[UUID], data: JSONBody[AgentUpdate], db_session: DbSession
    ) -> MemberView:
        return member_view(await roles.set_agent(db_session, club_id, me(), player_id, data.agent_id))

    @get("/{club_id:uuid}/agents/tree", summary="The agent tree (an agent sees its own subtree only)")
    async def tree(self, club_id: FromPath[UUID], db_session: DbSession) -> AgentTree:
        root, found = await roles.tree(db_session, club_id, me())
        return AgentTree(root=root, members=[member_view(m) for m in found])

    @get("/{club_id:uuid}/tables", summary="The club's open lobby tables (members)")
    async def tables(self, club_id: FromPath[UUID], db_session: DbSession) -> list[ClubTableView]:
        return [
            ClubTableView(
                table_id=t.table_id,
                union_id=t.union_id,
                name=t.name,
                asset=t.asset,
                small_blind=t.small_blind,
                big_blind=t.big_blind,
                seats=t.seats,
                opened_at=t.opened_at,
            )
            for t in await tables.open_tables(db_session, club_id, me())
        ]

    @put("/{club_id:uuid}/bans/{player_id:uuid}", summary="Ban a player (a member is removed)")
    async def ban(
        self, club_id: FromPath[UUID], player_id: FromPath[UUID], data: JSONBody[BanCreate], db_session: DbSession
    ) -> BanView:
        return ban_view(await membership.ban(db_session, club_id, me(), player_id, data.reason))

    @delete("/{club_id:uuid}/bans/{player_id:uuid}", summary="Lift a ban")
    async def unban(self, club_id: FromPath[UUID], player_id: FromPath[UUID], db_session: DbSession) -> None:
        await membership.unban(db_session, club_id, me(), player_id)

    @get("/{club_id:uuid}/bans", summary="Banned players (owner, managers)")
    async def bans(self, club_id: FromPath[UUID], db_session: DbSession) -> list[BanView]:
        return [ban_view(b) for b in await membership.bans(db_session, club_id, me())]


class InviteController(Controller):
    path = "/api/v1/clubs/{club_id:uuid}"
    tags = ["invites"]
    security = BEARER

    @post("/invites", summary="Create an invite code (owner, managers)")
    async def create(self, club_id: FromPath[UUID], data: JSONBody[InviteCreate], db_session: DbSession) -> InviteView:
        invite = await invites.create_code(
            db_session, club_id, me(), expires_at=data.expires_at, max_uses=data.max_uses, agent_id=data.agent_id
        )
        return invite_view(invite)

    @get("/invites", summary="The club's invite codes (owner, managers)")
    async def list_codes(self, club_id: FromPath[UUID], db_session: DbSession) -> list[InviteView]:
        return [invite_view(i) for i in await invites.codes(db_session, club_id, me())]

    @post("/invites/{code:str}/revoke", status_code=HTTP_200_OK, summary="Revoke an invite code")
    async def revoke(self, club_id: FromPath[UUID], code: FromPath[str], db_session: DbSession) -> InviteView:
        return invite_view(await invites.revoke(db_session, club_id, me(), code))

    @post(
        "/agent-code", status_code=HTTP_200_OK, summary="My recruiting code as an agent (the same one while it works)"
    )
    async def agent_code(self, club_id: FromPath[UUID], db_session: DbSession) -> InviteView:
        return invite_view(await invites.agent_code(db_session, club_id, me()))
