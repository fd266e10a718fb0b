"""The audit trail: every privileged action, who did it, when, the state before and after."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tablium_club.db.models import AuditEntry, Member

AUDIT_PAGE = 200


async def record(
    session: AsyncSession,
    club_id: uuid.UUID,
    actor: uuid.UUID,
    action: str,
    *,
    target: uuid.UUID | str | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    session.add(
        AuditEntry(
            club_id=club_id,
            actor_id=actor,
            action=action,
            target=None if target is None else str(target),
            before=before,
            after=after,
        )
    )


def member_state(member: Member | None) -> dict[str, Any] | None:
    if member is None:
        return None
    return {"role": member.role, "agent_id": None if member.agent_id is None else str(member.agent_id)}


async def entries(session: AsyncSession, club_id: uuid.UUID, *, before_id: int | None, limit: int) -> list[AuditEntry]:
    """Newest first, a page at a time (``before_id``: the last id of the previous page)."""
    statement = select(AuditEntry).where(AuditEntry.club_id == club_id)
    if before_id is not None:
        statement = statement.where(AuditEntry.id < before_id)
    statement = statement.order_by(AuditEntry.id.desc()).limit(min(limit, AUDIT_PAGE))
    return list((await session.execute(statement)).scalars())
