"""Transfer history: newest first, cursor pagination on the insertion sequence, filters."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from tablium_wallet.db.ledger_sql import TRANSFER_COLUMNS
from tablium_wallet.domain.errors import TransferNotFound
from tablium_wallet.services.transfers import TransferRecord, record_from_row


async def history(
    session: AsyncSession,
    account_ids: Sequence[uuid.UUID],
    *,
    cursor: int | None,
    limit: int,
    asset: str | None = None,
    code: str | None = None,
) -> tuple[list[TransferRecord], int | None]:
    """A page of transfers touching ``account_ids``, and the cursor of the next page (None at the end)."""
    if not account_ids:
        return [], None
    query = (
        f"SELECT {TRANSFER_COLUMNS}, t.seq FROM transfers t LEFT JOIN transfers r ON r.pending_id = t.id "  # noqa: S608 (constant column lists only)
        "WHERE (t.debit_account_id = ANY(CAST(:ids AS uuid[])) OR t.credit_account_id = ANY(CAST(:ids AS uuid[])))"
    )
    params: dict[str, Any] = {"ids": list(account_ids), "limit": limit + 1}
    if cursor is not None:
        query += " AND t.seq < :cursor"
        params["cursor"] = cursor
    if asset is not None:
        query += " AND t.asset = :asset"
        params["asset"] = asset
    if code is not None:
        query += " AND t.code = :code"
        params["code"] = code
    rows = list(await session.execute(text(query + " ORDER BY t.seq DESC LIMIT :limit"), params))
    next_cursor = rows[limit - 1][14] if len(rows) > limit else None
    return [record_from_row(row) for row in rows[:limit]], next_cursor


async def get_transfer(session: AsyncSession, transfer_id: uuid.UUID) -> TransferRecord:
    row = (
        await session.execute(
            text(
                f"SELECT {TRANSFER_COLUMNS} FROM transfers t LEFT JOIN transfers r ON r.pending_id = t.id "  # noqa: S608 (constant column lists only)
                "WHERE t.id = :id"
            ),
            {"id": transfer_id},
        )
    ).one_or_none()
    if row is None:
        raise TransferNotFound(f"no transfer {transfer_id}")
    return record_from_row(row)
