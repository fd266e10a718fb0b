"""Waiting lists as the database holds them: a list's key (its stakes), its lock, the seats free at its
tables, and the Redis copy of it (services/registry.py) replaced from a snapshot. Queries only: what to
offer to whom is decided in services/matching.py.

Lock order (ADR 0008): the list (a transaction-scoped advisory lock on its key), then tables (by row),
then offers, then entries.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tablium_lobby.db.models import ACTIVE_SEAT, CashTable, Seat
from tablium_lobby.db.waiting import ACTIVE_ENTRY, SeatOffer, WaitingEntry
from tablium_lobby.services.registry import Registry


@dataclass(frozen=True)
class ListKey:
    """The stakes a waiting list is for."""

    small_blind: int
    big_blind: int
    ante: int
    seat_count: int
    game: str = "nlhe"

    def __str__(self) -> str:
        return f"{self.game}:{self.small_blind}:{self.big_blind}:{self.ante}:{self.seat_count}"

    @classmethod
    def of(cls, table: CashTable) -> ListKey:
        return cls(table.small_blind, table.big_blind, table.ante, table.seat_count, table.game)

    @classmethod
    def of_entry(cls, entry: WaitingEntry) -> ListKey:
        return cls(entry.small_blind, entry.big_blind, entry.ante, entry.seat_count, entry.game)

    def tables(self) -> Any:
        """The open public tables of these stakes (a WHERE clause)."""
        return (
            (CashTable.game == self.game)
            & (CashTable.small_blind == self.small_blind)
            & (CashTable.big_blind == self.big_blind)
            & (CashTable.ante == self.ante)
            & (CashTable.seat_count == self.seat_count)
            & (CashTable.status == "open")
            & CashTable.private.is_(False)
            # Club tables have their members' own quick seat (services/clubs.py), never the public lists.
            & CashTable.club_id.is_(None)
        )


async def lock_list(session: AsyncSession, key: ListKey) -> None:
    await session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": f"waiting:{key}"})


def held_seats() -> Any:
    """Seats taken or held by an open offer, per table (a correlated scalar)."""
    taken = select(func.count()).where(Seat.table_id == CashTable.id, Seat.status.in_(ACTIVE_SEAT))
    offered = select(func.count()).where(SeatOffer.table_id == CashTable.id, SeatOffer.status == "open")
    return taken.scalar_subquery() + offered.scalar_subquery()


def new_entry(key: ListKey, player_id: uuid.UUID, buy_in: int, status: str) -> WaitingEntry:
    now = datetime.now(UTC)
    return WaitingEntry(
        id=uuid.uuid4(),
        list_key=str(key),
        player_id=player_id,
        game=key.game,
        small_blind=key.small_blind,
        big_blind=key.big_blind,
        ante=key.ante,
        seat_count=key.seat_count,
        buy_in=buy_in,
        status=status,
        created_at=now,
        updated_at=now,
    )


async def candidates(session: AsyncSession, key: ListKey, buy_in: int | None) -> list[uuid.UUID]:
    """Tables with a seat neither taken nor held, fullest first (from the database)."""
    held = held_seats()
    query = select(CashTable.id).where(key.tables(), held < CashTable.seat_count)
    if buy_in is not None:
        query = query.where(
            CashTable.min_buy_in_bb * CashTable.big_blind <= buy_in,
            CashTable.max_buy_in_bb * CashTable.big_blind >= buy_in,
        )
    query = query.order_by(held.desc(), CashTable.created_at, CashTable.id).limit(20)
    return list((await session.execute(query)).scalars())


async def free_seats(session: AsyncSession, table: CashTable) -> tuple[list[int], set[uuid.UUID]]:
    """Seat numbers neither taken nor held at ``table`` (locked by the caller), and who sits there."""
    seats = (
        await session.execute(
            select(Seat.seat_no, Seat.player_id).where(Seat.table_id == table.id, Seat.status.in_(ACTIVE_SEAT))
        )
    ).all()
    offered = (
        await session.execute(
            select(SeatOffer.seat_no).where(SeatOffer.table_id == table.id, SeatOffer.status == "open")
        )
    ).scalars()
    busy = {s.seat_no for s in seats} | set(offered)
    return [n for n in range(table.seat_count) if n not in busy], {s.player_id for s in seats}


async def refresh_copy(sessions: async_sessionmaker[AsyncSession], registry: Registry, key: ListKey) -> None:
    """Replace the Redis copy of ``key`` with a snapshot read under the list's lock (newest wins)."""
    async with sessions.begin() as session:
        await lock_list(session, key)
        held = held_seats()
        rows = (
            await session.execute(
                select(CashTable.id, CashTable.seat_count - held)
                .where(key.tables())
                .order_by(CashTable.created_at, CashTable.id)
            )
        ).all()
        # Score: free seats, plus a fraction below 1 ordering tables of as many free seats oldest first, as
        # the database's candidates are (the order quick seat offers them in, whichever one answers).
        free = {str(table_id): int(n) + i / (len(rows) + 1) for i, (table_id, n) in enumerate(rows)}
        rows = await session.execute(
            select(WaitingEntry.player_id, WaitingEntry.number).where(
                WaitingEntry.list_key == str(key), WaitingEntry.status == "waiting"
            )
        )
        waiting = {str(player): int(number) for player, number in rows.all()}
        await registry.replace(str(key), free, waiting)


async def keys_in_use(sessions: async_sessionmaker[AsyncSession]) -> set[ListKey]:
    """Every list with someone in it or an open public table."""
    async with sessions() as session:
        tables = await session.execute(
            select(CashTable.small_blind, CashTable.big_blind, CashTable.ante, CashTable.seat_count, CashTable.game)
            .where(CashTable.status == "open", CashTable.private.is_(False), CashTable.club_id.is_(None))
            .distinct()
        )
        entries = await session.execute(
            select(
                WaitingEntry.small_blind,
                WaitingEntry.big_blind,
                WaitingEntry.ante,
                WaitingEntry.seat_count,
                WaitingEntry.game,
            )
            .where(WaitingEntry.status.in_(ACTIVE_ENTRY))
            .distinct()
        )
        return {ListKey(*row) for row in [*tables.all(), *entries.all()]}
