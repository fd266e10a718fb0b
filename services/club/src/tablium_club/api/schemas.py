"""Request and response bodies. Requests reject unknown fields: a typo is an error, not a no-op."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec

from tablium_kit.inputs import exact, utc_instant
from tablium_kit.money import Amount

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=60, pattern=exact(r"\S(.*\S)?"))]
Description = Annotated[str, msgspec.Meta(max_length=1000)]
LogoUrl = Annotated[str, msgspec.Meta(max_length=500, pattern=exact(r"https://[^\s]+"))]
Privacy = Literal["public", "private"]
Bps = Annotated[int, msgspec.Meta(ge=0, le=10_000, description="Basis points of a hand's rake (cumulative).")]
Code = Annotated[str, msgspec.Meta(pattern=exact("[A-HJ-NP-Z2-9]{10}"), description="An invite code.")]
Note = Annotated[str, msgspec.Meta(max_length=280)]
# A point in time must say its offset: a naive time means nothing to a server in another zone.
Instant = Annotated[datetime, msgspec.Meta(tz=True)]


class Request(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class TableRules(Request):
    """What a club table starts from unless its manager says otherwise."""

    seats: Annotated[int, msgspec.Meta(ge=2, le=10)] = 6
    small_blind: Amount | None = None
    big_blind: Amount | None = None
    min_buy_in: Amount | None = None
    max_buy_in: Amount | None = None
    asset: Annotated[str, msgspec.Meta(pattern=exact("[A-Z][A-Z0-9]{1,15}"))] = "USDT"


class ClubCreate(Request):
    name: Name
    description: Description = ""
    logo_url: LogoUrl | None = None
    privacy: Privacy = "private"
    default_table_rules: TableRules = msgspec.field(default_factory=TableRules)


class ClubUpdate(Request):
    name: Name | msgspec.UnsetType = msgspec.UNSET
    description: Description | msgspec.UnsetType = msgspec.UNSET
    logo_url: LogoUrl | msgspec.UnsetType | None = msgspec.UNSET
    privacy: Privacy | msgspec.UnsetType = msgspec.UNSET
    default_table_rules: TableRules | msgspec.UnsetType = msgspec.UNSET


class ClubView(msgspec.Struct, kw_only=True):
    id: UUID
    name: str
    description: str
    logo_url: str | None
    privacy: str
    default_table_rules: dict[str, Any]
    owner_id: UUID
    status: Literal["open", "closed"]
    union_id: UUID | None
    created_at: datetime
    my_role: Annotated[str | None, msgspec.Meta(description="The caller's role; null for a non-member.")]


class MemberView(msgspec.Struct, kw_only=True):
    player_id: UUID
    role: Literal["owner", "manager", "agent", "member"]
    agent_id: Annotated[UUID | None, msgspec.Meta(description="The agent this member answers to; null: the club.")]
    joined_at: datetime


class AgentTree(msgspec.Struct, kw_only=True):
    root: Annotated[UUID | None, msgspec.Meta(description="The agent whose subtree this is; null: the whole club.")]
    members: list[MemberView]


class JoinRequestCreate(Request):
    message: Note = ""


class JoinRequestView(msgspec.Struct, kw_only=True):
    id: UUID
    club_id: UUID
    player_id: UUID
    message: str
    status: Literal["pending", "approved", "rejected", "cancelled"]
    created_at: datetime
    decided_at: datetime | None


class JoinWithCode(Request):
    code: Code


class InviteCreate(Request):
    expires_at: Instant | None = None
    max_uses: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] | None = None
    agent_id: Annotated[UUID | None, msgspec.Meta(description="Recruits join under this agent.")] = None

    def __post_init__(self) -> None:
        if self.expires_at is not None:
            self.expires_at = utc_instant(self.expires_at)


class InviteView(msgspec.Struct, kw_only=True):
    code: str
    club_id: UUID
    agent_id: UUID | None
    expires_at: datetime | None
    max_uses: int | None
    uses: int
    revoked: bool
    created_at: datetime


class RoleUpdate(Request):
    role: Literal["manager", "agent", "member"]


class AgentUpdate(Request):
    agent_id: UUID | None


class TransferOwnership(Request):
    new_owner_id: UUID


class BanCreate(Request):
    reason: Note = ""


class BanView(msgspec.Struct, kw_only=True):
    player_id: UUID
    banned_by: UUID
    reason: str
    created_at: datetime


class AgentDeal(Request):
    agent_id: UUID
    bps: Bps
    player_bps: Annotated[int, msgspec.Meta(ge=0, le=10_000, description="What this agent's own players get.")]


class DealUpdate(Request):
    club_bps: Bps
    player_bps: Bps
    agents: Annotated[list[AgentDeal], msgspec.Meta(max_length=500)] = msgspec.field(default_factory=list)
    effective_from: Annotated[
        Instant | None, msgspec.Meta(description="Hands completed at or after it accrue under this version; now.")
    ] = None

    def __post_init__(self) -> None:
        if self.effective_from is not None:
            self.effective_from = utc_instant(self.effective_from)


class AgentDealView(msgspec.Struct, kw_only=True):
    agent_id: UUID
    parent_agent_id: UUID | None
    bps: int
    player_bps: int


class DealView(msgspec.Struct, kw_only=True):
    club_id: UUID
    union_id: UUID | None
    version: int
    effective_from: datetime
    union_bps: int | None
    club_bps: int
    player_bps: int
    agents: list[AgentDealView]


class UnionCreate(Request):
    name: Name


class UnionJoin(Request):
    club_id: UUID


class UnionShare(Request):
    union_bps: Bps


class UnionClubView(msgspec.Struct, kw_only=True):
    club_id: UUID
    status: Literal["pending", "member"]
    union_bps: int | None


class UnionView(msgspec.Struct, kw_only=True):
    id: UUID
    name: str
    owner_id: UUID
    founding_club_id: UUID
    clubs: list[UnionClubView]


class AuditView(msgspec.Struct, kw_only=True):
    id: int
    actor_id: UUID
    action: str
    target: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    at: datetime


class ClubTableView(msgspec.Struct, kw_only=True):
    table_id: UUID
    union_id: UUID | None
    name: str
    asset: str
    small_blind: Amount
    big_blind: Amount
    seats: int
    opened_at: datetime
