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

The list's queries and its Redis copy are in services/lists.py, the background passes in
services/list_loop.py; this module decides who is offered what.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import structlog
from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from tablium_kit.errors import NotFound, ProblemError
from tablium_lobby.db.models import ACTIVE_SEAT, CashTable, Seat
from tablium_lobby.db.waiting import ACTIVE_ENTRY, SeatOffer, WaitingEntry
from tablium_lobby.services.announcer import Announcer
from tablium_lobby.services.hub import Hub
from tablium_lobby.services.list_loop import ListLoop
from tablium_lobby.services.lists import ListKey, candidates, free_seats, lock_list, new_entry, refresh_copy
from tablium_lobby.services.registry import Registry
from tablium_lobby.services.seating import BuyInRefused, Seating, WalletPending
from tablium_lobby.services.tables import get_table

log = structlog.get_logger("tablium.lobby.matching")


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
        self.loop = ListLoop(self.sessions, self.pump)
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
            # The place in line before the seat: a sit-down with an offer takes no list lock, and its commit
            # turns the entry from offered to seated and adds the seat at once. Each statement sees what was
            # committed when it began, so looking for the seat first could miss both (the seat not yet there,
            # the entry no longer offered) and hold a second seat; looked for in this order, the seat that
            # replaced the entry is always seen (a flake of two identical quick seats, ADR 0008).
            entry = (
                await session.execute(
                    select(WaitingEntry).where(
                        WaitingEntry.list_key == str(key),
                        WaitingEntry.player_id == player_id,
                        WaitingEntry.status.in_(ACTIVE_ENTRY),
                    )
                )
            ).scalar_one_or_none()
            seat = (
                await session.execute(
                    select(Seat)
                    .join(CashTable, CashTable.id == Seat.table_id)
                    .where(key.tables(), Seat.player_id == player_id, Seat.status.in_(ACTIVE_SEAT))
                    .limit(1)
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
                    entry = new_entry(key, player_id, buy_in, "waiting")
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

    async def _hold_a_seat(
        self, session: AsyncSession, key: ListKey, player_id: uuid.UUID, buy_in: int
    ) -> SeatOffer | None:
        """Hold a free seat at the fullest fitting table for the player (an offer of their own)."""
        hinted = [uuid.UUID(t) for t in await self.registry.fullest(str(key)) or []]
        tried: set[uuid.UUID] = set()
        for batch in (hinted, None):
            ids = batch if batch is not None else await candidates(session, key, buy_in)
            for table_id in ids:
                if table_id in tried:
                    continue
                tried.add(table_id)
                table = await get_table(session, table_id, lock=True)
                if ListKey.of(table) != key or table.status != "open" or table.private or table.club_id:
                    continue
                stakes_ok = table.min_buy_in_bb * table.big_blind <= buy_in <= table.max_buy_in_bb * table.big_blind
                free, sitting = await free_seats(session, table)
                if not stakes_ok or not free or player_id in sitting:
                    continue
                entry = new_entry(key, player_id, buy_in, "offered")
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
        for table_id in await candidates(session, key, None):
            table = await get_table(session, table_id, lock=True)
            if ListKey.of(table) != key or table.status != "open" or table.private or table.club_id:
                continue
            free, sitting = await free_seats(session, table)
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
        await refresh_copy(self.sessions, self.registry, key)

    # -- the player's side ---------------------------------------------------------------------

    async def accept(self, offer_id: uuid.UUID, player_id: uuid.UUID, buy_in: int | None) -> Seat:
        """Sit down with an offer (the sit-down saga; the offer is checked and taken under the table's lock)."""
        async with self.sessions() as session:
            offer = await session.get(SeatOffer, offer_id)
            if offer is None or offer.player_id != player_id:
                raise NotFound(f"you have no seat offer {offer_id}")
            entry = await session.get(WaitingEntry, offer.entry_id)
            assert entry is not None
        key = ListKey.of_entry(entry)
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
        key = ListKey.of_entry(entry)
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
        """Pass over ``key`` soon (in the background loop)."""
        self.loop.wanted(key)

    async def _key_of(self, table_id: uuid.UUID) -> ListKey | None:
        if table_id not in self._keys:
            async with self.sessions() as session:
                table = await session.get(CashTable, table_id)
            self._keys[table_id] = None if table is None or table.private or table.club_id else ListKey.of(table)
        return self._keys[table_id]

    async def on_seat_change(self, table_id: uuid.UUID, change: dict[str, object]) -> None:
        """Seating committed a change at ``table_id``: a freed seat goes to the line; the copy is refreshed."""
        if change.get("type") == "stack-changed":
            # A top-up: no seat taken or freed, so neither the copy's free seats nor the line change (the
            # refresh reads every table of the stakes: at 500 tables it was 4% of the lobby's CPU).
            return
        key = await self._key_of(table_id)
        if key is None:
            return
        # The copy now, before the change is answered: the next quick seat's candidates include it.
        try:
            await self.refresh(key)
        except Exception:  # never fail the seat change; the periodic pass rewrites the copy
            log.warning("registry refresh failed", list_key=str(key))
        self.wanted(key)

    async def seats_freed(self, table_id: uuid.UUID) -> None:
        """Seats at ``table_id`` became free without a seat change the table hears of (a new table, a
        refused buy-in): offered to the line now, before the caller answers."""
        key = await self._key_of(table_id)
        if key is None:
            return
        try:
            await self.pump(key)
        except Exception:  # never fail the caller: the loop passes over the list again
            log.warning("waiting list pass failed", list_key=str(key), exc_info=True)
            self.wanted(key)

    async def start(self, interval_s: float) -> None:
        await self.loop.start(interval_s)
        if self.announcer.redis is not None:
            self._tasks.append(asyncio.create_task(self.announcer.listen(), name="lobby-offers"))

    async def stop(self) -> None:
        await self.loop.stop()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
