"""Giving a player their deposit address for an asset: the same one every time, never anyone else's."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from tablium_blockchain.db.models import DERIVATION_INDEX, DepositAddress
from tablium_blockchain.domain.addresses import MasterKey


async def deposit_address(session: AsyncSession, master: MasterKey, *, player_id: uuid.UUID, asset: str) -> str:
    """The player's address for ``asset``, derived at a fresh index the first time.

    Concurrent first requests race on the (player, asset) unique key: one insert wins, the others find
    its row. The losers' indexes are skipped for good (the sequence never hands them out again), which
    costs nothing: an unused index is an address nobody was told.
    """
    existing = await session.scalar(
        select(DepositAddress.address).where(DepositAddress.player_id == player_id, DepositAddress.asset == asset)
    )
    if existing is not None:
        return existing
    index = int(await session.scalar(DERIVATION_INDEX.next_value()) or 0)
    address = master.deposit_address(index)
    await session.execute(
        insert(DepositAddress)
        .values(id=uuid.uuid4(), player_id=player_id, asset=asset, derivation_index=index, address=address)
        .on_conflict_do_nothing(index_elements=["player_id", "asset"])
    )
    chosen = await session.scalar(
        select(DepositAddress.address).where(DepositAddress.player_id == player_id, DepositAddress.asset == asset)
    )
    assert chosen is not None
    return chosen


async def owners(session: AsyncSession, addresses: set[str]) -> dict[str, uuid.UUID]:
    """Deposit address (checksummed) -> its player, for those of ``addresses`` that are deposit addresses."""
    if not addresses:
        return {}
    rows = await session.execute(
        select(DepositAddress.address, DepositAddress.player_id).where(DepositAddress.address.in_(addresses))
    )
    return dict(rows.tuples().all())
