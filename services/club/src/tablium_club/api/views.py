"""Rows to response bodies (rows are read by attribute: this layer imports no table)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tablium_club.api.schemas import (
    AgentDealView,
    AuditView,
    BanView,
    ClubView,
    DealView,
    InviteView,
    JoinRequestView,
    MemberView,
    UnionClubView,
    UnionView,
)

if TYPE_CHECKING:
    from tablium_club.db.models import AuditEntry, Ban, Club, Deal, InviteCode, JoinRequest, Member, Union, UnionClub


def club_view(club: Club, member: Member | None) -> ClubView:
    return ClubView(
        id=club.id,
        name=club.name,
        description=club.description,
        logo_url=club.logo_url,
        privacy=club.privacy,
        default_table_rules=club.default_table_rules,
        owner_id=club.owner_id,
        status=club.status,  # type: ignore[arg-type]
        union_id=club.union_id,
        created_at=club.created_at,
        my_role=None if member is None else member.role,
    )


def member_view(member: Member) -> MemberView:
    return MemberView(
        player_id=member.player_id,
        role=member.role,  # type: ignore[arg-type]
        agent_id=member.agent_id,
        joined_at=member.joined_at,
    )


def request_view(request: JoinRequest) -> JoinRequestView:
    return JoinRequestView(
        id=request.id,
        club_id=request.club_id,
        player_id=request.player_id,
        message=request.message,
        status=request.status,  # type: ignore[arg-type]
        created_at=request.created_at,
        decided_at=request.decided_at,
    )


def invite_view(invite: InviteCode) -> InviteView:
    return InviteView(
        code=invite.code,
        club_id=invite.club_id,
        agent_id=invite.agent_id,
        expires_at=invite.expires_at,
        max_uses=invite.max_uses,
        uses=invite.uses,
        revoked=invite.revoked_at is not None,
        created_at=invite.created_at,
    )


def ban_view(ban: Ban) -> BanView:
    return BanView(player_id=ban.player_id, banned_by=ban.banned_by, reason=ban.reason, created_at=ban.created_at)


def deal_view(deal: Deal) -> DealView:
    agents: list[dict[str, Any]] = deal.agents
    return DealView(
        club_id=deal.club_id,
        union_id=deal.union_id,
        version=deal.version,
        effective_from=deal.effective_from,
        union_bps=deal.union_bps,
        club_bps=deal.club_bps,
        player_bps=deal.player_bps,
        agents=[
            AgentDealView(
                agent_id=a["agent_id"],
                parent_agent_id=a["parent_agent_id"],
                bps=a["bps"],
                player_bps=a["player_bps"],
            )
            for a in agents
        ],
    )


def union_view(union: Union, places: list[UnionClub]) -> UnionView:
    return UnionView(
        id=union.id,
        name=union.name,
        owner_id=union.owner_id,
        founding_club_id=union.founding_club_id,
        clubs=[
            UnionClubView(club_id=p.club_id, status=p.status, union_bps=p.union_bps)  # type: ignore[arg-type]
            for p in places
        ],
    )


def audit_view(entry: AuditEntry) -> AuditView:
    return AuditView(
        id=entry.id,
        actor_id=entry.actor_id,
        action=entry.action,
        target=entry.target,
        before=entry.before,
        after=entry.after,
        at=entry.at,
    )
