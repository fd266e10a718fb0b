"""The action clock of a table's running hand, kept by the instance holding the table's lease: at the
deadline the actor's time bank once, else the default action (check, else fold). A part of
:class:`~tablium_lobby.services.runner.TableRunner`, whose lock, cache and writes it uses."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tablium_lobby.db.models import CashTable, HandRecord, Seat
from tablium_lobby.domain.protocol import Outgoing
from tablium_lobby.services.lease import LeaseLost
from tablium_lobby.services.tables import get_table

if TYPE_CHECKING:
    from tablium_lobby.services.dealer import Dealer
    from tablium_poker import Hand

log = structlog.get_logger("tablium.lobby.runner")


def now_ms() -> int:
    return int(time.time() * 1000)


class TurnClock:
    """One task per table, woken whenever the deadline moves; never cancelled mid-commit."""

    dealer: Dealer
    table_id: uuid.UUID
    lock: asyncio.Lock
    hand: Hand | None
    hand_id: uuid.UUID | None
    players: dict[int, str]
    banks: dict[int, int]
    away: set[int]
    deadline_ms: int
    seq_seen: int
    timer: asyncio.Task[None] | None
    _rearm: asyncio.Event

    if TYPE_CHECKING:  # the runner's, which this clock drives

        @property
        def owner(self) -> bool: ...
        def _fence(self, table: CashTable) -> None: ...
        async def _load(self, session: AsyncSession, table: CashTable) -> None: ...
        def _drop_cache(self) -> None: ...
        def _decide(self, *args: object) -> object: ...
        async def _write(self, session: AsyncSession, table: CashTable, move: object) -> list[Outgoing]: ...
        def _after_commit(self) -> None: ...
        def nudge(self) -> None: ...

    def _arm(self) -> None:
        """Keep the clock of the running hand: one task per table, woken whenever the deadline moves."""
        if not self.owner:
            return
        if self.timer is None or self.timer.done():
            self.timer = asyncio.create_task(self._clock(), name=f"clock-{self.table_id}")
        else:
            self._rearm.set()

    def stop_clock(self) -> None:
        """The lease is gone: the clock stops at its next wake-up (never cancelled mid-commit)."""
        self._rearm.set()

    async def _clock(self) -> None:
        """At the deadline: the time bank if the actor has one, else the default action (check, else fold)."""
        while self.owner and self.hand is not None and not self.hand.is_finished:
            self._rearm.clear()
            delay = max(0.0, (self.deadline_ms - now_ms()) / 1000)
            try:
                await asyncio.wait_for(self._rearm.wait(), delay)
                continue  # the deadline moved or the lease went: look again
            except TimeoutError:
                pass
            async with self.lock:
                try:
                    messages, acted = await self._at_deadline()
                except LeaseLost:
                    self.dealer.disown(self.table_id)
                    return
                except Exception:
                    self._drop_cache()
                    log.exception("the clock failed to act", table=str(self.table_id))
                    await asyncio.sleep(0.5)
                    self.nudge()
                    return
            if messages:
                self.dealer.hub.publish(self.table_id, messages, self.players)
            if acted:
                self._after_commit()

    async def _at_deadline(self) -> tuple[list[Outgoing], bool]:
        async with self.dealer.sessions.begin() as session:
            table = await get_table(session, self.table_id, lock=True)
            self._fence(table)
            await self._load(session, table)
            hand = self.hand
            if hand is None or hand.is_finished or now_ms() + 20 < self.deadline_ms:
                return [], False  # the hand moved on, or its deadline did (another instance's commit)
            actor = hand.actor_seat
            bank = self.banks.get(actor, 0) if actor is not None and actor not in self.away else 0
            if actor is not None and bank > 0:
                return await self._use_time_bank(session, table, actor, bank), False
            move = self._decide(None, "timeout", None, None, table.seq, "timeout")
            return await self._write(session, table, move), True

    async def _use_time_bank(self, session: AsyncSession, table: CashTable, seat: int, bank_ms: int) -> list[Outgoing]:
        """The actor's whole time bank extends the deadline once (the caller's transaction, row locked)."""
        record = await session.get(HandRecord, self.hand_id, with_for_update=True)
        assert record is not None
        owner = uuid.UUID(self.players[seat])
        seat_row = (
            await session.execute(
                select(Seat).where(Seat.table_id == self.table_id, Seat.player_id == owner, Seat.seat_no == seat)
            )
        ).scalar_one_or_none()
        if seat_row is not None:
            seat_row.time_bank_ms = 0
        self.banks[seat] = 0
        self.deadline_ms += bank_ms
        record.deadline = datetime.fromtimestamp(self.deadline_ms / 1000, UTC)
        table.seq += 1
        self.seq_seen = table.seq
        return [
            Outgoing(
                {
                    "type": "time-bank",
                    "seq": table.seq,
                    "seat": seat,
                    "userId": self.players[seat],
                    "deadline": self.deadline_ms,
                }
            )
        ]
