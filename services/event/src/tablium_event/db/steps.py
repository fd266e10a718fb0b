"""Money steps as state machines: a status only moves forward, by a compare-and-set.

Two requests (or a request and the reconciler) may run the same saga step at once: each wallet call is
idempotent by its id, and only the one whose ``UPDATE ... WHERE status = expected`` matches records
its result. The loser reads the status again and goes on from there, so a step's late answer can never
overwrite a later status (``held`` over ``posted``) nor re-run an earlier step.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, TypeVar

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from tablium_event.db.models import Purchase, Registration

Step = TypeVar("Step", Registration, Purchase)


async def advance(
    session: AsyncSession, model: type[Step], id: uuid.UUID, expected: str | Sequence[str], status: str, **values: Any
) -> bool:
    """Move the row from ``expected`` to ``status`` (with ``values``) in the session's transaction, if it
    is still there; True if this call moved it. The caller commits."""
    statuses = [expected] if isinstance(expected, str) else list(expected)
    moved = await session.scalar(
        update(model)
        .where(model.id == id, model.status.in_(statuses))
        .values(status=status, **values)
        .returning(model.id)
        .execution_options(synchronize_session=False)
    )
    return moved is not None
