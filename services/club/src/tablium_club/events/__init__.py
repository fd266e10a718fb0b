"""Events the club service publishes, through the kit's transactional outbox (docs/events/club.md).

Each is written in the transaction of the change it reports, under the club's (or union's) row lock,
with the next ``seq`` of that club (or union), so consumers can keep the newest fact per subject.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from tablium_club.db.models import MESSAGING, Club, Deal, Union
from tablium_kit.messaging import Outbox

outbox = Outbox("club", MESSAGING)


async def publish_club(session: AsyncSession, club: Club, type: str, **data: Any) -> None:
    """``type`` about ``club`` (locked by the caller), with the club's next ``seq``."""
    club.seq += 1
    payload = {"club_id": str(club.id), **{k: _wire(v) for k, v in data.items()}, "seq": club.seq}
    await outbox.add(session, type=type, subject=str(club.id), data=payload)


async def publish_union(session: AsyncSession, union: Union, type: str, club_id: uuid.UUID) -> None:
    union.seq += 1
    payload = {"union_id": str(union.id), "club_id": str(club_id), "seq": union.seq}
    await outbox.add(session, type=type, subject=str(union.id), data=payload)


async def publish_union_dissolved(session: AsyncSession, union: Union, clubs: list[uuid.UUID]) -> None:
    """After each member club's ``club.union_left``: the union is gone (``clubs``: those that left)."""
    union.seq += 1
    payload = {"union_id": str(union.id), "clubs": [str(c) for c in clubs], "seq": union.seq}
    await outbox.add(session, type="club.union_dissolved", subject=str(union.id), data=payload)


async def publish_member(
    session: AsyncSession, club: Club, type: str, *, player_id: uuid.UUID, role: str, agent_id: uuid.UUID | None
) -> None:
    """``club.member_joined`` or ``club.member_updated``: the member's whole current state."""
    await publish_club(session, club, type, player_id=player_id, role=role, agent_id=agent_id)


async def publish_member_left(session: AsyncSession, club: Club, *, player_id: uuid.UUID, reason: str) -> None:
    await publish_club(session, club, "club.member_left", player_id=player_id, reason=reason)


async def publish_deal(session: AsyncSession, club: Club, deal: Deal) -> None:
    """The whole deal, never a delta: the newest ``version`` alone is enough."""
    await publish_club(
        session,
        club,
        "club.deal_changed",
        union_id=deal.union_id,
        version=deal.version,
        effective_from=deal.effective_from.isoformat(),
        union_bps=deal.union_bps,
        club_bps=deal.club_bps,
        player_bps=deal.player_bps,
        agents=deal.agents,
    )


def _wire(value: Any) -> Any:
    return str(value) if isinstance(value, uuid.UUID) else value
