"""Quick seat ("player matching") and waiting lists, one list per stake (ADR 0008, "Quick seat").

Postgres decides: every change to a list happens under the list's lock (a transaction-scoped advisory
lock on the list's key), and a seat is held or taken under its table's row lock. Lock order: the list,
then tables (by row), then offers, then entries; a sit-down takes the table, then the offer, then the
entry, and never the list, so the orders agree.

- Quick seat: anyone already waiting at these stakes goes first, so a newcomer joins the back of the line;
  otherwise the fullest open public table with a free seat (candidates from the Redis registry, each
  checked under its table's lock) is held for the player with an offer of their own, which the same
  request then takes through the ordinary sit-down saga (:meth:`Seating.sit_down`, one code path for
  money). The hold is what makes two players racing for the last seat end one seated, one waiting.
- A freed seat (a leave, a cash-out, a refused buy-in, a new table, an offer that expired or was given
  up) is offered, fullest table first, to the first in line: the seat is held until the offer expires;
  the player takes it by sitting down with the offer; an expired offer passes to the next.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from redis.asyncio import Redis
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from tablium_kit.errors import NotFound, ProblemError
from tablium_lobby.db.models import ACTIVE_SEAT, CashTable, Seat
from tablium_lobby.db.waiting import ACTIVE_ENTRY, SeatOffer, WaitingEntry
from tablium_lobby.services.announcer import Announcer
from tablium_lobby.services.hub import Hub
from tablium_lobby.services.registry import Registry
from tablium_lobby.services.seating import BuyInRefused, Seating, WalletPending
from tablium_lobby.services.tables import get_table

log = structlog.get_logger("tablium.lobby.matching")


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


@dataclass
class EntryView:
    entry: WaitingEntry
    offer: SeatOffer | None = None
    position: int | None = None  # place in line from 1, while waiting
    waiting: int = 0  # people waiting in this list


@dataclass
class QuickSeatResult:
    status: str  # "seated" | "offered" | "waiting"
    seat: Seat | None = None
    entry: EntryView | None = None


async def lock_list(session: AsyncSession, key: ListKey) -> None:
    await session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": f"waiting:{key}"})


def _held() -> Any:
    """Seats taken or held by an open offer, per table (a correlated scalar)."""
    taken = select(func.count()).where(Seat.table_id == CashTable.id, Seat.status.in_(ACTIVE_SEAT))
    offered = select(func.count()).where(SeatOffer.table_id == CashTable.id, SeatOffer.status == "open")
    return taken.scalar_subquery() + offered.scalar_subquery()


@dataclass
class _Made:
    """Offers a transaction made, announced after it commits."""

    offers: list[SeatOffer] = field(default_factory=list)


class Matching:
    def __init__(self, seating: Seating, registry: Registry, hub: Hub | None, redis: Redis | None, prefix: str) -> None:
        self.seating = seating
        self.sessions = seating.sessions
        self.settings = seating.settings
        self.registry = registry
        self.hub = hub
        self.announcer = Announcer(hub, redis, prefix)
        self._keys: dict[uuid.UUID, ListKey | None] = {}  # table -> its list (None: private); stakes never change
        self._wanted: set[ListKey] = set()
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    # -- quick seat --------------------------------------------------------------------------

    async def quick_seat(self, player_id: uuid.UUID, key: ListKey, buy_in: int) -> QuickSeatResult:
        """Seat the player at the fullest table of these stakes, or put them in line. Asked again, the
        same answer: the seat they have at these stakes, or their place in line (one of each, at most)."""
        made = _Made()
        held: SeatOffer | None = None
        async with self.sessions.begin() as session:
            await lock_list(session, key)
            await self._pump_locked(session, key, made)
            seat = (
                await session.execute(
                    select(Seat)
                    .join(CashTable, CashTable.id == Seat.table_id)
                    .where(key.tables(), Seat.player_id == player_id, Seat.status.in_(ACTIVE_SEAT))
                    .limit(1)
                )
            ).scalar_one_or_none()
            entry = (
                await session.execute(
                    select(WaitingEntry).where(
                        WaitingEntry.list_key == str(key),
                        WaitingEntry.player_id == player_id,
                        WaitingEntry.status.in_(ACTIVE_ENTRY),
                    )
                )
            ).scalar_one_or_none()
            if seat is None and entry is None:
                ahead = await session.execute(
                    select(WaitingEntry.id)
                    .where(WaitingEntry.list_key == str(key), WaitingEntry.status == "waiting")
                    .limit(1)
                )
                if ahead.first() is None:
                    held = await self._hold_a_seat(session, key, player_id, buy_in)
                if held is None:
                    entry = self._entry(key, player_id, buy_in, "waiting")
                    session.add(entry)
        await self._after(key, made)
        if seat is not None:
            return QuickSeatResult("seated", seat=seat)
        if held is not None:
            try:
                seat = await self.seating.sit_down(held.table_id, player_id, held.seat_no, buy_in, offer_id=held.id)
            except BuyInRefused:
                self.wanted(key)  # the seat is free again: the next in line
                raise
            except WalletPending:
                raise  # the buy-in is recorded and will be finished: the seat is the player's
            except ProblemError:
                # Refused before the seat was taken (the table closed meanwhile, say): the hold is let go.
                await self.leave_list(held.entry_id, player_id)
                raise
            return QuickSeatResult("seated", seat=seat)
        assert entry is not None
        view = await self._view(entry)
        return QuickSeatResult(view.entry.status, entry=view)

    def _entry(self, key: ListKey, player_id: uuid.UUID, buy_in: int, status: str) -> WaitingEntry:
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

    async def _candidates(self, session: AsyncSession, key: ListKey, buy_in: int | None) -> list[uuid.UUID]:
        """Tables with a seat neither taken nor held, fullest first (from the database)."""
        held = _held()
        query = select(CashTable.id).where(key.tables(), held < CashTable.seat_count)
        if buy_in is not None:
            query = query.where(
                CashTable.min_buy_in_bb * CashTable.big_blind <= buy_in,
                CashTable.max_buy_in_bb * CashTable.big_blind >= buy_in,
            )
        query = query.order_by(held.desc(), CashTable.created_at, CashTable.id).limit(20)
        return list((await session.execute(query)).scalars())

    async def _free_seats(self, session: AsyncSession, table: CashTable) -> tuple[list[int], set[uuid.UUID]]:
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

    async def _hold_a_seat(
        self, session: AsyncSession, key: ListKey, player_id: uuid.UUID, buy_in: int
    ) -> SeatOffer | None:
        """Hold a free seat at the fullest fitting table for the player (an offer of their own)."""
        hinted = [uuid.UUID(t) for t in await self.registry.fullest(str(key)) or []]
        tried: set[uuid.UUID] = set()
        for batch in (hinted, None):
            ids = batch if batch is not None else await self._candidates(session, key, buy_in)
            for table_id in ids:
                if table_id in tried:
                    continue
                tried.add(table_id)
                table = await get_table(session, table_id, lock=True)
                if ListKey.of(table) != key or table.status != "open" or table.private or table.club_id:
                    continue
                stakes_ok = table.min_buy_in_bb * table.big_blind <= buy_in <= table.max_buy_in_bb * table.big_blind
                free, sitting = await self._free_seats(session, table)
                if not stakes_ok or not free or player_id in sitting:
                    continue
                entry = self._entry(key, player_id, buy_in, "offered")
                session.add(entry)
                await session.flush()
                return self._offer(session, entry, table.id, free[0])
        return None

    def _offer(self, session: AsyncSession, entry: WaitingEntry, table_id: uuid.UUID, seat_no: int) -> SeatOffer:
        now = datetime.now(UTC)
        offer = SeatOffer(
            id=uuid.uuid4(),
            entry_id=entry.id,
            table_id=table_id,
            seat_no=seat_no,
            player_id=entry.player_id,
            status="open",
            expires_at=now + timedelta(seconds=self.settings.offer_ttl_s),
            created_at=now,
        )
        entry.status = "offered"
        entry.updated_at = now
        session.add(offer)
        return offer

    # -- offers to the line ------------------------------------------------------------------

    async def _pump_locked(self, session: AsyncSession, key: ListKey, made: _Made) -> None:
        """Expire overdue offers, then offer every free seat to the first in line (list locked)."""
        now = datetime.now(UTC)
        overdue = (
            await session.execute(
                select(SeatOffer.table_id)
                .join(WaitingEntry, WaitingEntry.id == SeatOffer.entry_id)
                .where(WaitingEntry.list_key == str(key), SeatOffer.status == "open", SeatOffer.expires_at <= now)
                .distinct()
            )
        ).scalars()
        for table_id in sorted(set(overdue)):
            await get_table(session, table_id, lock=True)  # the table before its offers (lock order)
            offers = (
                await session.execute(
                    select(SeatOffer)
                    .where(SeatOffer.table_id == table_id, SeatOffer.status == "open", SeatOffer.expires_at <= now)
                    .with_for_update()
                )
            ).scalars()
            for offer in offers:
                offer.status = "expired"
                offer.finished_at = now
                entry = await session.get(WaitingEntry, offer.entry_id, with_for_update=True)
                if entry is not None and entry.status == "offered":
                    entry.status = "missed"  # out of the line: the seat passes to the next
                    entry.updated_at = now
        await session.flush()
        line = list(
            (
                await session.execute(
                    select(WaitingEntry)
                    .where(WaitingEntry.list_key == str(key), WaitingEntry.status == "waiting")
                    .order_by(WaitingEntry.number)
                )
            ).scalars()
        )
        if not line:
            return
        for table_id in await self._candidates(session, key, None):
            table = await get_table(session, table_id, lock=True)
            if ListKey.of(table) != key or table.status != "open" or table.private or table.club_id:
                continue
            free, sitting = await self._free_seats(session, table)
            for seat_no in free:
                entry = next((e for e in line if e.player_id not in sitting), None)
                if entry is None:
                    break
                line.remove(entry)
                made.offers.append(self._offer(session, entry, table.id, seat_no))
            if not line:
                return

    async def pump(self, key: ListKey) -> list[SeatOffer]:
        made = _Made()
        async with self.sessions.begin() as session:
            await lock_list(session, key)
            await self._pump_locked(session, key, made)
        await self._after(key, made)
        return made.offers

    async def _after(self, key: ListKey, made: _Made) -> None:
        """After a commit: announce the offers made, refresh the Redis copy of the list."""
        for offer in made.offers:
            await self.announcer.announce(
                offer, str(key.small_blind), str(key.big_blind), str(key.ante), key.seat_count
            )
        await self.refresh(key)

    async def refresh(self, key: ListKey) -> None:
        """Replace the Redis copy of ``key`` with a snapshot read under the list's lock (newest wins)."""
        async with self.sessions.begin() as session:
            await lock_list(session, key)
            held = _held()
            rows = await session.execute(select(CashTable.id, CashTable.seat_count - held).where(key.tables()))
            free = {str(table_id): int(n) for table_id, n in rows.all()}
            rows = await session.execute(
                select(WaitingEntry.player_id, WaitingEntry.number).where(
                    WaitingEntry.list_key == str(key), WaitingEntry.status == "waiting"
                )
            )
            waiting = {str(player): int(number) for player, number in rows.all()}
            await self.registry.replace(str(key), free, waiting)

    # -- the player's side ---------------------------------------------------------------------

    async def accept(self, offer_id: uuid.UUID, player_id: uuid.UUID, buy_in: int | None) -> Seat:
        """Sit down with an offer (the sit-down saga; the offer is checked and taken under the table's lock)."""
        async with self.sessions() as session:
            offer = await session.get(SeatOffer, offer_id)
            if offer is None or offer.player_id != player_id:
                raise NotFound(f"you have no seat offer {offer_id}")
            entry = await session.get(WaitingEntry, offer.entry_id)
            assert entry is not None
        key = ListKey(entry.small_blind, entry.big_blind, entry.ante, entry.seat_count, entry.game)
        try:
            seat = await self.seating.sit_down(
                offer.table_id, player_id, offer.seat_no, buy_in or entry.buy_in, offer_id=offer.id
            )
        except BuyInRefused:
            self.wanted(key)
            raise
        self.wanted(key)
        return seat

    async def leave_list(self, entry_id: uuid.UUID, player_id: uuid.UUID) -> EntryView:
        """Leave a list (giving up an offer made): the seat passes to the next. Repeated: no second effect."""
        async with self.sessions() as session:
            entry = await session.get(WaitingEntry, entry_id)
        if entry is None or entry.player_id != player_id:
            raise NotFound(f"you have no waiting-list entry {entry_id}")
        key = ListKey(entry.small_blind, entry.big_blind, entry.ante, entry.seat_count, entry.game)
        made = _Made()
        async with self.sessions.begin() as session:
            await lock_list(session, key)
            offer = (
                await session.execute(
                    select(SeatOffer).where(SeatOffer.entry_id == entry_id, SeatOffer.status == "open")
                )
            ).scalar_one_or_none()
            now = datetime.now(UTC)
            if offer is not None:
                await get_table(session, offer.table_id, lock=True)
                offer = await session.get(SeatOffer, offer.id, with_for_update=True, populate_existing=True)
                if offer is not None and offer.status == "open":
                    offer.status = "withdrawn"
                    offer.finished_at = now
            current = await session.get(WaitingEntry, entry_id, with_for_update=True, populate_existing=True)
            assert current is not None
            if current.status in ACTIVE_ENTRY:
                current.status = "left"
                current.updated_at = now
            await self._pump_locked(session, key, made)
            entry = current
        await self._after(key, made)
        return EntryView(entry)

    async def entries_of(self, player_id: uuid.UUID) -> list[EntryView]:
        """The player's places in line and open offers."""
        async with self.sessions() as session:
            entries = list(
                (
                    await session.execute(
                        select(WaitingEntry)
                        .where(WaitingEntry.player_id == player_id, WaitingEntry.status.in_(ACTIVE_ENTRY))
                        .order_by(WaitingEntry.number)
                    )
                ).scalars()
            )
        return [await self._view(entry) for entry in entries]

    async def _view(self, entry: WaitingEntry) -> EntryView:
        view = EntryView(entry)
        async with self.sessions() as session:
            if entry.status == "offered":
                view.offer = (
                    await session.execute(
                        select(SeatOffer).where(SeatOffer.entry_id == entry.id, SeatOffer.status == "open")
                    )
                ).scalar_one_or_none()
            if entry.status != "waiting":
                return view
            cached = await self.registry.position(entry.list_key, str(entry.player_id))
            if cached is not None:
                view.position, view.waiting = cached
                return view
            line = WaitingEntry.list_key == entry.list_key, WaitingEntry.status == "waiting"
            view.position = await session.scalar(select(func.count()).where(*line, WaitingEntry.number <= entry.number))
            view.waiting = await session.scalar(select(func.count()).where(*line)) or 0
        return view

    # -- keeping lists moving ----------------------------------------------------------------------

    def wanted(self, key: ListKey) -> None:
        """Pump ``key`` soon (in the background loop)."""
        self._wanted.add(key)
        self._wake.set()

    async def on_seat_change(self, table_id: uuid.UUID, change: dict[str, object]) -> None:
        """Seating committed a change at ``table_id``: a freed seat goes to the line; the copy is refreshed."""
        if table_id not in self._keys:
            async with self.sessions() as session:
                table = await session.get(CashTable, table_id)
            self._keys[table_id] = None if table is None or table.private or table.club_id else ListKey.of(table)
        key = self._keys[table_id]
        if key is None:
            return
        # The copy now, before the change is answered: the next quick seat's candidates include it.
        try:
            await self.refresh(key)
        except Exception:  # never fail the seat change; the periodic pass rewrites the copy
            log.warning("registry refresh failed", list_key=str(key))
        self.wanted(key)

    async def keys_in_use(self) -> set[ListKey]:
        """Every list with someone in it or an open public table."""
        async with self.sessions() as session:
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

    async def pump_all(self, keys: Sequence[ListKey] | None = None) -> None:
        for key in keys if keys is not None else await self.keys_in_use():
            try:
                await self.pump(key)
            except Exception:  # one list's failure must not stop the others
                log.exception("waiting list pass failed", list_key=str(key))

    async def run(self, interval_s: float) -> None:
        """Pump lists when asked (a seat freed) and all of them every ``interval_s`` (expiries, new
        tables, a lost wake-up, another instance's changes)."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), interval_s)
            self._wake.clear()
            wanted, self._wanted = self._wanted, set()
            try:
                await self.pump_all(sorted(wanted, key=str) if wanted else None)
            except Exception:
                log.exception("waiting list pass failed")

    async def start(self, interval_s: float) -> None:
        await self.pump_all()  # the Redis copies rebuilt from Postgres, overdue offers passed on
        self._tasks.append(asyncio.create_task(self.run(interval_s), name="lobby-matching"))
        if self.announcer.redis is not None:
            self._tasks.append(asyncio.create_task(self.announcer.listen(), name="lobby-offers"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
