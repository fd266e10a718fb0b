"""Opening and reading accounts."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from tablium_kit.db import Reader
from tablium_wallet.db.models import Account
from tablium_wallet.domain.accounts import check_owner
from tablium_wallet.domain.assets import check_asset
from tablium_wallet.domain.errors import AccountNotFound, PlayerNotFound
from tablium_wallet.domain.ledger import Balance


@dataclass(frozen=True)
class AccountRecord:
    id: uuid.UUID
    owner: str
    kind: str
    asset: str
    flags: int
    balance: Balance


_COLUMNS = "id, owner, kind, asset, flags, debits_pending, debits_posted, credits_pending, credits_posted"
_OPEN = text(
    "INSERT INTO accounts (id, owner, kind, asset, flags) VALUES (:id, :owner, :kind, :asset, :flags) "
    "ON CONFLICT (owner, kind, asset) DO NOTHING"
)
_BY_KEY = text(f"SELECT {_COLUMNS} FROM accounts WHERE owner = :owner AND kind = :kind AND asset = :asset")  # noqa: S608 (constant column lists only)
_BY_ID = text(f"SELECT {_COLUMNS} FROM accounts WHERE id = :id")  # noqa: S608 (constant column lists only)
_RECORD_PLAYER = text("INSERT INTO players (id) VALUES (:id) ON CONFLICT (id) DO NOTHING")
_PLAYER_EXISTS = text("SELECT EXISTS (SELECT FROM players WHERE id = :id)")


def _record(row: Sequence[Any]) -> AccountRecord:
    # The counters are numeric (asyncpg: Decimal); ints keep the ledger's arithmetic exact.
    return AccountRecord(
        id=row[0], owner=row[1], kind=row[2], asset=row[3], flags=row[4], balance=Balance(row[4], *map(int, row[5:9]))
    )


async def open_account(session: AsyncSession, *, owner: str, kind: str, asset: str) -> AccountRecord:
    """Open the (owner, kind, asset) account, or return it if it is open already."""
    flags = check_owner(owner, kind)
    check_asset(asset)
    params = {"owner": owner, "kind": kind, "asset": asset}
    await session.execute(_OPEN, {**params, "id": uuid.uuid4(), "flags": int(flags)})
    row = (await session.execute(_BY_KEY, params)).one()
    return _record(row)


async def record_player(session: AsyncSession, player_id: uuid.UUID) -> None:
    """Remember that ``player_id`` registered (``player.registered``; a redelivery changes nothing)."""
    await session.execute(_RECORD_PLAYER, {"id": player_id})


async def check_player(session: AsyncSession, player_id: uuid.UUID) -> None:
    """Refuse a player the wallet never heard of: money moved to them would have no owner."""
    if not await session.scalar(_PLAYER_EXISTS, {"id": player_id}):
        raise PlayerNotFound(f"no registered player {player_id}")


async def get_account(session: AsyncSession, account_id: uuid.UUID) -> AccountRecord:
    row = (await session.execute(_BY_ID, {"id": account_id})).one_or_none()
    if row is None:
        raise AccountNotFound(f"no account {account_id}")
    return _record(row)


_ACCOUNTS_OF = (
    select(*(Account.__table__.c[name] for name in _COLUMNS.split(", ")))
    .where(Account.__table__.c.owner == bindparam("owner"))
    .order_by(Account.__table__.c.asset, Account.__table__.c.kind)
)


async def read_accounts(reader: Reader, *, owner: str) -> list[AccountRecord]:
    """An owner's accounts for a read-only answer: one statement (one snapshot), no transaction."""
    return [_record(tuple(row)) for row in await reader.all(_ACCOUNTS_OF, owner=owner)]


async def find_accounts(
    session: AsyncSession, *, owner: str, asset: str | None = None, kind: str | None = None
) -> list[AccountRecord]:
    query = f"SELECT {_COLUMNS} FROM accounts WHERE owner = :owner"  # noqa: S608 (constant column lists only)
    params: dict[str, Any] = {"owner": owner}
    if asset is not None:
        query += " AND asset = :asset"
        params["asset"] = asset
    if kind is not None:
        query += " AND kind = :kind"
        params["kind"] = kind
    rows = await session.execute(text(query + " ORDER BY asset, kind"), params)
    return [_record(row) for row in rows]
