"""One :class:`TableRunner` per table in this process: actions committed DB first, and the table's clock.

DB first (ARCHITECTURE.md §6): every accepted action is committed (its ``hand_actions`` row, the hand's
action count and the table's new ``seq``, in one transaction, under the table's row lock; the hand's whole
engine state too on the locked path, services/hand_log.py) before any client hears of it. A runner's
in-memory hand is a cache of the committed state, valid while the table's ``seq`` is the one it read (any
writer, on any instance, moves it); it is dropped on any failure.

A player's action is written by whichever instance holds the player's socket. The clock (time banks,
time-outs), the deal and what follows a hand belong to the instance holding the table's lease
(services/lease.py): they run only while this runner holds an epoch, and each of their writes checks that
epoch against the table row in the same transaction.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import structlog
from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import defer

from tablium_lobby.db.actions import FINISH_HAND, RECORD_ACTION, ActionWrite
from tablium_lobby.db.models import CashTable, HandAction, HandRecord
from tablium_lobby.domain.actions import ACTION_NAMES, ActionRefused, apply_action
from tablium_lobby.domain.protocol import Outgoing, event_messages, turn_messages
from tablium_lobby.services.dealing import (
    HandFacts,
    TableFacts,
    finish_hand,
    hand_end_committed,
    hand_end_write,
    start_hand,
)
from tablium_lobby.services.hand_log import committed_hand
from tablium_lobby.services.lease import LeaseLost, check_fence
from tablium_lobby.services.stages import ActionClock, action_done
from tablium_lobby.services.tables import active_seats, get_table
from tablium_lobby.services.turn_clock import TurnClock, now_ms
from tablium_poker import Hand, PokerError

if TYPE_CHECKING:
    from tablium_lobby.services.dealer import Dealer

__all__ = ["ACTIONS", "ActionRefused", "TableRunner"]

log = structlog.get_logger("tablium.lobby.runner")
ACTIONS = Counter("tablium_lobby_actions", "Actions accepted", ["automatic"])
_PLAYER_ACTIONS = ACTIONS.labels("player")  # the hot path's: looked up once
FENCED = Counter("tablium_lobby_fenced_writes", "Writes refused because the lease epoch moved on")

AWAY_CLOCK_S = 0.2  # a sat-out player's turn: acted for at once
_STATE_UNREAD = (defer(HandRecord.state), defer(HandRecord.result))


@dataclass(frozen=True)
class _Move:
    """An action the engine took (applied to the runner's hand, not yet written)."""

    seat: int
    action: str
    amount: int | None
    automatic: str | None
    mark: int  # the hand's events before it: the ones after are its messages


class TableRunner(TurnClock):
    def __init__(self, dealer: Dealer, table_id: uuid.UUID) -> None:
        self.dealer = dealer
        self.table_id = table_id
        self.lock = asyncio.Lock()
        # The cache of the committed state, read at table seq ``seq_seen``.
        self.seq_seen = -1
        self.hand: Hand | None = None
        self.hand_id: uuid.UUID | None = None
        self.players: dict[int, str] = {}
        # What the hand's end says of the table and the hand (fixed when created: db/actions.py FINISH_HAND).
        self.table_facts: TableFacts | None = None
        self.hand_facts: HandFacts | None = None
        self.deadline_ms = 0
        self.turn_seq = 0
        self.action_clock_s = 0
        self.banks: dict[int, int] = {}
        self.away: set[int] = set()  # seats sat out (disconnected): acted for at once
        self.seated: set[str] = set()  # players holding a seat (the holder watches their presence)
        # The lease: the epoch this instance took (None: another instance keeps this table's clock).
        self.epoch: int | None = None
        self.lease_token: str | None = None
        self.timer: asyncio.Task[None] | None = None
        self._rearm = asyncio.Event()
        self.next_deal: asyncio.Task[None] | None = None
        self.deal_wanted = False
        self.next_sync: asyncio.Task[None] | None = None
        self.sync_wanted = False
        self.between: set[asyncio.Task[None]] = set()
        self._followed: set[uuid.UUID] = set()  # finished hands whose aftermath this runner started

    @property
    def owner(self) -> bool:
        """Whether this process keeps the table's clock (always, with leases switched off)."""
        return self.epoch is not None or not self.dealer.fenced

    def _fence(self, table: CashTable) -> None:
        if self.dealer.fenced:
            try:
                check_fence(table, self.epoch)
            except LeaseLost:
                FENCED.inc()
                raise

    # -- state ------------------------------------------------------------------------------

    async def _load(self, session: AsyncSession, table: CashTable) -> None:
        """The table's committed state, unless the cache already holds it (same ``seq``)."""
        self.action_clock_s = table.action_clock_s
        self.table_facts = TableFacts.of(table)
        if self.seq_seen == table.seq and self.hand_id == table.current_hand_id:
            return
        seats = await active_seats(session, table.id)
        self.away = {s.seat_no for s in seats if s.sitting_out}
        self.seated = {str(s.player_id) for s in seats if s.status == "seated"}
        if table.current_hand_id is None:
            self.hand, self.hand_id, self.players, self.banks = None, None, {}, {}
        else:
            record = await session.get(HandRecord, table.current_hand_id, populate_existing=True)
            assert record is not None
            self.hand = await committed_hand(session, record)
            self.hand_id, self.hand_facts = record.id, HandFacts.of(record)
            self.players = {int(seat): player for seat, player in record.players.items()}
            self.deadline_ms = int(record.deadline.timestamp() * 1000) if record.deadline else now_ms()
            self.turn_seq = record.turn_seq
            self.banks = {s.seat_no: s.time_bank_ms for s in seats if s.seat_no in self.players}
        self.seq_seen = table.seq

    def _drop_cache(self) -> None:
        self.seq_seen = -1
        self.hand, self.hand_id, self.players = None, None, {}

    async def take_epoch(self) -> int:
        """Bump the table's lease epoch (this instance just took the lease in Redis): from now on only
        writes made with the new epoch pass the fence."""
        async with self.lock, self.dealer.sessions.begin() as session:
            table = await get_table(session, self.table_id, lock=True)
            table.lease_epoch += 1
            return table.lease_epoch

    # -- dealing ----------------------------------------------------------------------------

    async def deal(self) -> None:
        """Deal a hand if none is running (the lease holder only)."""
        if not self.owner and not await self.dealer.claim(self.table_id):
            return  # the holder deals: it hears of the seat change through the table's channel
        async with self.lock:
            try:
                messages = await self._deal()
            except LeaseLost:
                self.dealer.disown(self.table_id)
                return
            except Exception:
                self._drop_cache()
                log.exception("dealing failed", table=str(self.table_id))
                return
        if messages is not None:
            self.dealer.hub.publish(self.table_id, messages, self.players)
            self._after_commit()

    async def _deal(self) -> list[Outgoing] | None:
        async with self.dealer.sessions.begin() as session:
            table = await get_table(session, self.table_id, lock=True)
            self._fence(table)
            await self._load(session, table)
            started = await start_hand(session, table)
            if started is None:
                return None
            self.hand, self.hand_id = started.hand, started.record.id
            self.hand_facts = HandFacts.of(started.record)
            self.players, self.banks = started.players, started.banks
            messages = started.messages + await self._progress(session, table, started.record, started.hand, dealt=True)
            self.seq_seen = table.seq
        return messages

    async def _progress(
        self, session: AsyncSession, table: CashTable, record: HandRecord, hand: Hand, *, dealt: bool = False
    ) -> list[Outgoing]:
        """After the hand moved: the next turn and its deadline, or the hand's end (caller's transaction).
        ``dealt``: the hand was just dealt, its row inserted with the first turn's deadline (the dealt seats
        are none sat out, so the clock is the table's): kept, so the row is not updated again."""
        self.turn_seq = record.turn_seq = table.seq
        if hand.is_finished:
            return await finish_hand(session, table, record, hand, self.players)
        record.deadline, messages = self._next_turn(hand, table.seq, record.deadline if dealt else None)
        return messages

    def _next_turn(self, hand: Hand, seq: int, deadline: datetime | None = None) -> tuple[datetime, list[Outgoing]]:
        """The running hand's next turn at table ``seq``: its deadline (``deadline``: already set) and the
        ``turn`` messages."""
        actor = hand.actor_seat
        if deadline is None or actor in self.away:
            clock = AWAY_CLOCK_S if actor in self.away else self.action_clock_s
            deadline = datetime.now(UTC) + timedelta(seconds=clock)
        self.deadline_ms = int(deadline.timestamp() * 1000)
        bank = self.banks.get(actor, 0) if actor is not None else 0
        return deadline, turn_messages(hand, self.players, seq, self.deadline_ms, bank)

    # -- acting -----------------------------------------------------------------------------

    async def act(
        self, player_id: str, action: str, amount: int | None, seen_seq: int, clock: ActionClock | None = None
    ) -> None:
        """Apply a player's action; raises :class:`ActionRefused` (nothing changed) if it is not accepted.
        ``clock``: the instants it passes through (services/stages.py)."""
        if action not in ACTION_NAMES:
            raise ActionRefused(f"unknown action {action[:20]!r}")
        clock = clock or ActionClock(time.time())
        async with self.lock:
            clock.locked = time.time()
            try:
                messages = await self._act_on_cache(player_id, action, amount, seen_seq, clock)
                if messages is None:
                    clock.path = "locked"
                    # Grouped with other tables' actions into one transaction; returns once it is committed.
                    async with self.dealer.group.transaction() as session:
                        table = await get_table(session, self.table_id, lock=True)
                        await self._load(session, table)
                        move = self._decide(player_id, action, amount, seen_seq, table.seq, None)
                        messages = await self._write(session, table, move)
                    clock.committed = time.time()
            except ActionRefused:
                raise  # the engine refuses before changing anything: the cache is still the committed state
            except BaseException:  # cancelled too: the move is applied in memory, its write may not be
                self._drop_cache()
                raise
            seq = self.seq_seen
        self.dealer.hub.publish(self.table_id, messages, self.players)
        action_done(clock, self.table_id, seq)
        self._after_commit()

    async def _act_on_cache(
        self, player_id: str, action: str, amount: int | None, seen_seq: int, clock: ActionClock
    ) -> list[Outgoing] | None:
        """The hot path: the action checked against the cached hand and written by one conditional statement
        (db/actions.py) that commits only if the table is still at the cached ``seq``. None: the cache was
        cold or stale, or the action was refused here; the caller takes the locked path, which reads the
        committed state and decides again (so a refusal never rests on a stale cache)."""
        seq = self.seq_seen
        hand, hand_id = self.hand, self.hand_id
        if seq < 0 or hand is None or hand_id is None or seen_seq > seq:
            return None
        try:
            move = self._decide(player_id, action, amount, seen_seq, seq, None)
        except ActionRefused:
            return None
        if hand.is_finished:
            clock.path = "end"
            return await self._end_on_cache(move, seq, hand, hand_id, clock)
        deadline, messages = self._next_turn(hand, seq + 1)
        write = ActionWrite(
            table_id=self.table_id,
            hand_id=hand_id,
            seq=seq,
            seat=move.seat,
            player_id=uuid.UUID(self.players[move.seat]),
            action=move.action,
            amount=move.amount or 0,
            deadline=deadline,
        )
        clock.decided = time.time()
        if await self.dealer.group.execute_one(RECORD_ACTION, write.params(), clock, key="hand_id") is None:
            self._drop_cache()  # another writer moved the table: the hand in memory is not what it committed
            return None
        self.seq_seen = self.turn_seq = seq + 1
        _PLAYER_ACTIONS.inc()
        return event_messages(hand.events[move.mark :], self.players, seq + 1) + messages

    async def _end_on_cache(
        self, move: _Move, seq: int, hand: Hand, hand_id: uuid.UUID, clock: ActionClock
    ) -> list[Outgoing] | None:
        """The hand's last action and its end (seats, result, outbox) as one conditional statement on the
        lanes (db/actions.py ``FINISH_HAND``), computed as the locked path's ``finish_hand`` computes them.
        None: the table moved (nothing written) and the cache is dropped."""
        table, facts = self.table_facts, self.hand_facts
        if table is None or facts is None or facts.hand_id != hand_id:
            self._drop_cache()  # the move is applied to the cached hand: the locked path reads it again
            return None
        write, end = hand_end_write(table, facts, hand, self.players, seq, (move.seat, move.action, move.amount or 0))
        clock.decided = time.time()
        if await self.dealer.group.execute_one(FINISH_HAND, write.params(), clock, key="hand_id") is None:
            self._drop_cache()
            return None
        hand_end_committed(table)
        self.seq_seen = self.turn_seq = seq + 1
        ACTIONS.labels("player").inc()
        return [*event_messages(hand.events[move.mark :], self.players, seq + 1), end.message]

    def _decide(
        self,
        player_id: str | None,
        action: str,
        amount: int | None,
        seen_seq: int | None,
        table_seq: int,
        automatic: str | None,
    ) -> _Move:
        """Check an action against the loaded hand and apply it there (nothing written yet); the engine
        refuses before changing anything."""
        hand = self.hand
        if hand is None or self.hand_id is None:
            raise ActionRefused("no hand is in progress")
        # The action answers the turn it names: a replay, or one sent before the last action, is stale.
        if seen_seq is not None and not self.turn_seq <= seen_seq <= table_seq:
            raise ActionRefused(f"stale: the turn is at seq {self.turn_seq}, your action was for {seen_seq}")
        actor = hand.actor_seat
        if player_id is None:
            seat = actor
        else:
            mine = [s for s, p in self.players.items() if p == player_id]
            if not mine:
                raise ActionRefused("you are not dealt into this hand")
            seat = mine[0]
        if seat is None or seat != actor:
            raise ActionRefused("it is not your turn")
        mark = len(hand.events)
        try:
            if automatic is not None:
                hand.act_default(seat)
                action = hand.events[mark].kind if len(hand.events) > mark else "fold"
            else:
                apply_action(hand, seat, action, amount)
        except PokerError as exc:
            raise ActionRefused(str(exc)) from None
        return _Move(seat, action, amount, automatic, mark)

    async def _write(self, session: AsyncSession, table: CashTable, move: _Move) -> list[Outgoing]:
        """Write an applied action through the ORM (the caller's transaction, the table's row locked)."""
        hand = self.hand
        assert hand is not None
        # Loaded by _load under the table's row lock (every writer of a hand takes it first): from
        # the session's identity map, no second query and no second lock; with the cache still valid (no
        # load) it is read here, without its saved state, which is replaced below, not read.
        record = await session.get(HandRecord, self.hand_id, options=_STATE_UNREAD)
        assert record is not None
        record.actions += 1
        table.seq += 1
        session.add(
            HandAction(
                hand_id=record.id,
                number=record.actions,
                seq=table.seq,
                seat=move.seat,
                player_id=uuid.UUID(self.players[move.seat]),
                action=move.action,
                amount=move.amount or 0,
                automatic=move.automatic,
                lease_epoch=self.epoch if move.automatic is not None else None,
            )
        )
        record.state, record.state_actions = hand.to_dict(), record.actions
        messages = event_messages(hand.events[move.mark :], self.players, table.seq)
        messages += await self._progress(session, table, record, hand)
        self.seq_seen = table.seq
        ACTIONS.labels(move.automatic or "player").inc()
        return messages

    def _after_commit(self) -> None:
        """Arm the clock for the next actor, or (the lease holder) settle the hand and deal the next one."""
        if self.hand is not None and not self.hand.is_finished:
            self._arm()
            return
        finished = self.hand_id
        self.hand, self.hand_id, self.players = None, None, {}
        self.follow(finished)

    def follow(self, finished: uuid.UUID | None) -> None:
        """What follows a hand (once per hand), by the lease holder: its rake settled, leavers cashed out,
        the next hand dealt after the pause."""
        if not self.owner or (finished is not None and finished in self._followed):
            return
        if finished is not None:
            self._followed = {*list(self._followed)[-8:], finished}
        task = asyncio.create_task(self._between_hands(finished), name=f"between-{self.table_id}")
        self.between.add(task)
        task.add_done_callback(self.between.discard)

    async def _between_hands(self, finished: uuid.UUID | None) -> None:
        if finished is not None:
            await self.dealer.settle(finished)
        if await self.dealer.anyone_leaving(self.table_id):
            await self.dealer.seating.cash_out_idle(self.table_id)
        await asyncio.sleep(self.dealer.settings.between_hands_s)
        keeper = self.dealer.keeper
        if keeper is not None and await keeper.hand_back(self.table_id):
            return  # another instance under its share deals the next hand
        self.request_deal()

    def request_deal(self) -> None:
        """Deal when possible: now, or when the pending deal or pause between hands is over."""
        self.deal_wanted = True
        if self.next_deal is None or self.next_deal.done():
            self.next_deal = asyncio.create_task(self._deal_while_wanted(), name=f"deal-{self.table_id}")

    async def _deal_while_wanted(self) -> None:
        # A seat change during a deal asks again: the deal that missed it is followed by one that sees it.
        while self.deal_wanted:
            self.deal_wanted = False
            await self.deal()

    # -- following commits made elsewhere ------------------------------------------------------

    def nudge(self) -> None:
        """Another instance committed at this table (or one may have): the holder re-reads the table and
        re-arms its clock, or deals."""
        if not self.owner:
            return
        self.sync_wanted = True
        if self.next_sync is None or self.next_sync.done():
            self.next_sync = asyncio.create_task(self._sync_while_wanted(), name=f"sync-{self.table_id}")

    def on_relayed(self, messages: list[Outgoing]) -> None:
        """Messages another instance committed and published for this table."""
        if not self.owner:
            return
        for outgoing in messages:
            kind = outgoing.message.get("type")
            if kind == "round-result":
                self.follow(uuid.UUID(str(outgoing.message["handId"])))
            elif kind in ("player-joined", "stack-changed", "player-back"):
                self.request_deal()
        self.nudge()

    async def _sync_while_wanted(self) -> None:
        while self.sync_wanted and self.owner:
            self.sync_wanted = False
            try:
                async with self.lock, self.dealer.sessions() as session:
                    await self._load(session, await get_table(session, self.table_id))
            except Exception:
                self._drop_cache()
                log.warning("re-reading the table failed", table=str(self.table_id), exc_info=True)
                continue
            if self.hand is not None and not self.hand.is_finished:
                self._arm()
            elif not self.between:
                self.follow(None)
