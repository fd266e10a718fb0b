"""Running hands: one :class:`TableRunner` per table in this process.

DB first (ARCHITECTURE.md §6): every accepted action is committed (its ``hand_actions`` row, the
hand's whole engine state and the table's new ``seq``, in one transaction, under the table's row lock)
before any client hears of it; a hand's result (stacks, rake, ``lobby.hand_completed`` in the outbox) is
committed with the action that ends it. A runner's in-memory hand is a cache: it is dropped on any
failure and rebuilt from the database.

Money after a hand (the rake into the house rake account, cash-outs of players who asked to leave) is a
wallet call made after the commit, holding no lock; :meth:`Dealer.reconcile` finishes any left undone.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from prometheus_client import Counter
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tablium_kit.errors import ProblemError
from tablium_lobby.clients.wallet import transfer_id
from tablium_lobby.db.models import CashTable, HandAction, HandRecord, Seat
from tablium_lobby.domain.protocol import Outgoing, event_messages, pots_out, turn_messages
from tablium_lobby.domain.summary import summarize
from tablium_lobby.events import HAND_COMPLETED, outbox
from tablium_lobby.services.commits import GroupCommit
from tablium_lobby.services.hub import Hub
from tablium_lobby.services.seating import Seating
from tablium_lobby.services.tables import active_seats, get_table, stakes_of
from tablium_lobby.settings import LobbySettings
from tablium_poker import Hand, PokerError, commitment, deck_from_seed, new_seed
from tablium_poker.rules import clockwise_from_button

log = structlog.get_logger("tablium.lobby.dealer")
HANDS = Counter("tablium_lobby_hands", "Hands completed", ["big_blind"])
ACTIONS = Counter("tablium_lobby_actions", "Actions accepted", ["automatic"])

ACTION_NAMES = frozenset({"fold", "check", "call", "bet", "raise", "all_in"})


class ActionRefused(Exception):
    """An action the table does not accept: the client gets an ``error``, nothing changes."""


def _now_ms() -> int:
    return int(time.time() * 1000)


def _apply(hand: Hand, seat: int, action: str, amount: int | None) -> list[Any]:
    if action in ("bet", "raise"):
        if amount is None:
            raise ActionRefused(f"{action} needs an amount (the total to bet or raise to)")
        return hand.bet_or_raise_to(seat, amount)
    if amount is not None:
        raise ActionRefused(f"{action} takes no amount")
    if action == "fold":
        return hand.fold(seat)
    if action == "check":
        return hand.check(seat)
    if action == "call":
        return hand.call(seat)
    return hand.all_in(seat)


class TableRunner:
    def __init__(self, dealer: Dealer, table_id: uuid.UUID) -> None:
        self.dealer = dealer
        self.table_id = table_id
        self.lock = asyncio.Lock()
        self.hand: Hand | None = None
        self.hand_id: uuid.UUID | None = None
        self.players: dict[int, str] = {}
        self.deadline_ms = 0
        self.turn_seq = 0
        self.actions_seen = 0
        self.banks: dict[int, int] = {}
        self.clock_s = 20
        self.timer: asyncio.Task[None] | None = None
        self.next_deal: asyncio.Task[None] | None = None
        self.deal_wanted = False
        self.between: set[asyncio.Task[None]] = set()
        # Seats sat out (their player disconnected): acted for at once when their turn comes.
        self.away: set[int] = set()

    # -- state ------------------------------------------------------------------------------

    async def _load(self, session: AsyncSession, table: CashTable) -> None:
        """The running hand from the database (the cache is empty after a failure or a restart)."""
        self.clock_s = table.action_clock_s
        if table.current_hand_id is None:
            self.hand, self.hand_id, self.players = None, None, {}
            return
        record = await session.get(HandRecord, table.current_hand_id, populate_existing=True)
        assert record is not None
        # The cache holds only while no other writer (another instance) moved the hand since.
        if self.hand is not None and self.hand_id == record.id and self.actions_seen == record.actions:
            return
        self.hand = Hand.from_dict(record.state)
        self.hand_id = record.id
        self.actions_seen = record.actions
        self.players = {int(seat): player for seat, player in record.players.items()}
        self.deadline_ms = int(record.deadline.timestamp() * 1000) if record.deadline else _now_ms()
        # Rebuilt from the database, the turn is numbered by the table's seq: clients hydrate and act on it.
        self.turn_seq = table.seq
        seats = await active_seats(session, table.id)
        self.banks = {s.seat_no: s.time_bank_ms for s in seats if s.seat_no in self.players}
        self.away = {s.seat_no for s in seats if s.sitting_out}

    def _drop_cache(self) -> None:
        self.hand, self.hand_id, self.players = None, None, {}

    # -- dealing ----------------------------------------------------------------------------

    async def deal(self) -> None:
        """Deal a hand if none is running and two or more seated players have chips."""
        async with self.lock:
            try:
                messages = await self._deal()
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
            await self._load(session, table)
            if table.current_hand_id is not None or table.status != "open":
                return None
            seats = [
                s
                for s in await active_seats(session, self.table_id)
                if s.status == "seated" and s.stack > 0 and not s.sitting_out and not s.leave_requested
            ]
            if len(seats) < 2:
                return None
            occupied = [s.seat_no for s in seats]
            previous = table.button if table.button is not None else max(occupied)
            button = clockwise_from_button(occupied, previous)[0]
            seed = new_seed()
            hand = Hand.start(
                stakes_of(table).rules(), {s.seat_no: s.stack for s in seats}, button, deck_from_seed(seed)
            )
            now = datetime.now(UTC)
            table.seq += 1
            table.button = button
            table.hands_dealt += 1
            record = HandRecord(
                id=uuid.uuid4(),
                table_id=table.id,
                hand_no=table.hands_dealt,
                seed=seed,
                commitment=commitment(seed),
                players={str(s.seat_no): str(s.player_id) for s in seats},
                state=hand.to_dict(),
                status="running",
                actions=0,
                deadline=now + timedelta(seconds=table.action_clock_s),
                rake=0,
                started_at=now,
            )
            session.add(record)
            await session.flush()
            table.current_hand_id = record.id
            self.hand, self.hand_id, self.actions_seen = hand, record.id, 0
            self.players = {s.seat_no: str(s.player_id) for s in seats}
            self.banks = {s.seat_no: s.time_bank_ms for s in seats}
            self.deadline_ms = int(record.deadline.timestamp() * 1000) if record.deadline else _now_ms()
            start = Outgoing(
                {
                    "type": "hand-start",
                    "seq": table.seq,
                    "handId": str(record.id),
                    "handNo": record.hand_no,
                    "button": button,
                    "smallBlind": str(table.small_blind),
                    "bigBlind": str(table.big_blind),
                    "ante": str(table.ante),
                    "commitment": record.commitment,
                    "players": [{"seat": s.seat_no, "userId": str(s.player_id), "stack": str(s.stack)} for s in seats],
                }
            )
            messages = [start, *event_messages(hand.events[1:], self.players, table.seq)]
            messages += await self._progress(session, table, record, hand)
        return messages

    async def _progress(
        self, session: AsyncSession, table: CashTable, record: HandRecord, hand: Hand
    ) -> list[Outgoing]:
        """After the hand moved: the next turn, or the hand's end (in the caller's transaction)."""
        self.turn_seq = table.seq
        if hand.is_finished:
            return await self._finish(session, table, record, hand)
        actor = hand.actor_seat
        clock = 0.2 if actor in self.away else table.action_clock_s
        record.deadline = datetime.now(UTC) + timedelta(seconds=clock)
        self.deadline_ms = int(record.deadline.timestamp() * 1000)
        bank = self.banks.get(actor, 0) if actor is not None else 0
        return turn_messages(hand, self.players, table.seq, self.deadline_ms, bank)

    async def _finish(self, session: AsyncSession, table: CashTable, record: HandRecord, hand: Hand) -> list[Outgoing]:
        results = summarize(hand)
        rake = sum(r.rake for r in results)
        now = datetime.now(UTC)
        record.status = "finished"
        record.rake = rake
        record.finished_at = now
        record.deadline = None
        record.state = hand.to_dict()
        winners = [self.players[r.seat] for r in results if r.won > 0]
        record.result = {
            "players": [
                {
                    "seat": r.seat,
                    "player_id": self.players[r.seat],
                    "stack_before": str(r.stack_before),
                    "stack_after": str(r.stack_after),
                    "rake": str(r.rake),
                    "won": str(r.won),
                    "vpip": r.vpip,
                    "pfr": r.pfr,
                }
                for r in results
            ],
            "winners": winners,
            "rake": str(rake),
        }
        by_seat = {r.seat: r for r in results}
        for seat in await active_seats(session, table.id):
            result = by_seat.get(seat.seat_no)
            if result is not None and str(seat.player_id) == self.players[seat.seat_no]:
                seat.stack = result.stack_after
                seat.updated_at = now
        table.current_hand_id = None
        await outbox.add(
            session,
            type=HAND_COMPLETED,
            subject=str(table.id),
            data={
                "table_id": str(table.id),
                "tournament_id": None,
                "hand_id": str(record.id),
                "hand_history_id": str(record.id),
                "hand_no": record.hand_no,
                "seq": table.seq,
                "asset": table.asset,
                "small_blind": str(table.small_blind),
                "big_blind": str(table.big_blind),
                "ante": str(table.ante),
                **record.result,
            },
        )
        HANDS.labels(str(table.big_blind)).inc()
        return [
            Outgoing(
                {
                    "type": "round-result",
                    "seq": table.seq,
                    "handId": str(record.id),
                    "results": {self.players[r.seat]: str(r.stack_after - r.stack_before) for r in results},
                    "stacks": {self.players[r.seat]: str(r.stack_after) for r in results},
                    "winners": winners,
                    "rake": str(rake),
                    "pots": pots_out(hand),
                    "commitment": record.commitment,
                }
            )
        ]

    # -- acting -----------------------------------------------------------------------------

    async def act(self, player_id: str, action: str, amount: int | None, seen_seq: int) -> None:
        """Apply a player's action; raises :class:`ActionRefused` (nothing changed) if it is not accepted."""
        if action not in ACTION_NAMES:
            raise ActionRefused(f"unknown action {action[:20]!r}")
        async with self.lock:
            messages = await self._act(player_id, action, amount, seen_seq, automatic=None)
        self.dealer.hub.publish(self.table_id, messages, self.players)
        self._after_commit()

    async def _act(
        self, player_id: str | None, action: str, amount: int | None, seen_seq: int | None, automatic: str | None
    ) -> list[Outgoing]:
        try:
            # Grouped with other tables' actions into one transaction; returns once it is committed.
            async with self.dealer.group.transaction() as session:
                table = await get_table(session, self.table_id, lock=True)
                await self._load(session, table)
                hand = self.hand
                if hand is None or self.hand_id is None:
                    raise ActionRefused("no hand is in progress")
                # The action answers the turn it names: a replay, or one sent before the last action, is stale.
                if seen_seq is not None and not self.turn_seq <= seen_seq <= table.seq:
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
                if automatic is not None and table.current_hand_id is not None:
                    current = await session.get(HandRecord, table.current_hand_id)
                    slack = datetime.now(UTC) + timedelta(milliseconds=50)  # the timer's ms rounding
                    if current is not None and current.deadline is not None and current.deadline > slack:
                        raise ActionRefused("the actor's clock has not run out")
                mark = len(hand.events)
                try:
                    if automatic is not None:
                        hand.act_default(seat)
                        action = hand.events[mark].kind if len(hand.events) > mark else "fold"
                    else:
                        _apply(hand, seat, action, amount)
                except PokerError as exc:
                    raise ActionRefused(str(exc)) from None
                # Loaded by _load under the table's row lock (every writer of a hand takes it first): from
                # the session's identity map, no second query and no second lock.
                record = await session.get(HandRecord, self.hand_id)
                assert record is not None
                record.actions += 1
                self.actions_seen = record.actions
                table.seq += 1
                session.add(
                    HandAction(
                        hand_id=record.id,
                        number=record.actions,
                        seq=table.seq,
                        seat=seat,
                        player_id=uuid.UUID(self.players[seat]),
                        action=action,
                        amount=amount or 0,
                        automatic=automatic,
                    )
                )
                record.state = hand.to_dict()
                messages = event_messages(hand.events[mark:], self.players, table.seq)
                messages += await self._progress(session, table, record, hand)
        except ActionRefused:
            # The engine refuses before changing anything; the cache is still the committed state.
            raise
        except Exception:
            self._drop_cache()
            raise
        ACTIONS.labels(automatic or "player").inc()
        return messages

    def _after_commit(self) -> None:
        """Arm the clock for the next actor, or settle the hand and deal the next one."""
        current = asyncio.current_task()
        if self.timer is not None and self.timer is not current:
            self.timer.cancel()
        self.timer = None
        if self.hand is not None and not self.hand.is_finished:
            self.timer = asyncio.create_task(self._clock(self.hand_id), name=f"clock-{self.table_id}")
            return
        finished = self.hand_id
        self._drop_cache()
        task = asyncio.create_task(self._between_hands(finished), name=f"between-{self.table_id}")
        self.between.add(task)
        task.add_done_callback(self.between.discard)

    async def _between_hands(self, finished: uuid.UUID | None) -> None:
        if finished is not None:
            await self.dealer.settle(finished)
        await self.dealer.seating.cash_out_idle(self.table_id)
        await asyncio.sleep(self.dealer.settings.between_hands_s)
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

    async def _clock(self, hand_id: uuid.UUID | None) -> None:
        """At the deadline: the time bank if the actor has one, else the default action (check, else fold)."""
        while True:
            await asyncio.sleep(max(0.0, (self.deadline_ms - _now_ms()) / 1000))
            async with self.lock:
                hand = self.hand
                if hand is None or self.hand_id != hand_id or hand.is_finished:
                    return
                if _now_ms() < self.deadline_ms:
                    continue  # the deadline moved (a time bank)
                actor = hand.actor_seat
                bank = self.banks.get(actor, 0) if actor is not None and actor not in self.away else 0
                if actor is not None and bank > 0:
                    messages = await self._use_time_bank(actor, bank)
                    self.dealer.hub.publish(self.table_id, messages, self.players)
                    continue
                try:
                    messages = await self._act(None, "timeout", None, None, automatic="timeout")
                except ActionRefused:
                    # Another writer moved the hand or its clock: look again shortly, from the database.
                    self.deadline_ms = _now_ms() + 250
                    continue
                except Exception:
                    log.exception("time-out action failed", table=str(self.table_id))
                    return
            self.dealer.hub.publish(self.table_id, messages, self.players)
            self._after_commit()
            return

    async def _use_time_bank(self, seat: int, bank_ms: int) -> list[Outgoing]:
        async with self.dealer.sessions.begin() as session:
            table = await get_table(session, self.table_id, lock=True)
            record = await session.get(HandRecord, self.hand_id)
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


class Dealer:
    """Every table runner of this process, the house rake account, and the settlement of hands."""

    def __init__(
        self, settings: LobbySettings, sessions: async_sessionmaker[AsyncSession], seating: Seating, hub: Hub
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.seating = seating
        self.hub = hub
        self.runners: dict[uuid.UUID, TableRunner] = {}
        self.group = GroupCommit(sessions, (ActionRefused,), enabled=settings.group_commits)
        self.absences: dict[tuple[uuid.UUID, str], asyncio.Task[None]] = {}
        self._rake_account: uuid.UUID | None = None

    def runner(self, table_id: uuid.UUID) -> TableRunner:
        runner = self.runners.get(table_id)
        if runner is None:
            runner = self.runners[table_id] = TableRunner(self, table_id)
        return runner

    async def on_seat_change(self, table_id: uuid.UUID, change: dict[str, object]) -> None:
        """Seating committed a change: tell the table, and deal if a hand can start."""
        runner = self.runner(table_id)
        self.hub.publish(table_id, [Outgoing(dict(change))], runner.players)
        if change.get("type") in ("player-joined", "stack-changed"):
            runner.request_deal()

    async def recover(self) -> None:
        """At start: resume running hands (their clocks) and deal at tables that can play."""
        async with self.sessions() as session:
            rows = await session.execute(select(CashTable.id).where(CashTable.status == "open"))
            table_ids = list(rows.scalars())
        for table_id in table_ids:
            runner = self.runner(table_id)
            async with runner.lock, self.sessions() as session:
                table = await get_table(session, table_id)
                await runner._load(session, table)
            if runner.hand is not None:
                runner._after_commit()
            else:
                # Players who asked to leave during a hand this process no longer remembers.
                await self.seating.cash_out_idle(table_id)
                runner.request_deal()

    # -- presence: disconnect is not a free seat ---------------------------------------------

    def player_connected(self, table_id: uuid.UUID, player_id: str) -> None:
        task = self.absences.pop((table_id, player_id), None)
        if task is not None:
            task.cancel()
        runner = self.runner(table_id)
        task = asyncio.create_task(self._set_away(table_id, player_id, False), name="back")
        runner.between.add(task)
        task.add_done_callback(runner.between.discard)

    def player_disconnected(self, table_id: uuid.UUID, player_id: str) -> None:
        if self.hub.connected(table_id, player_id) or (table_id, player_id) in self.absences:
            return
        task = asyncio.create_task(self._absence(table_id, player_id), name=f"absence-{player_id}")
        self.absences[(table_id, player_id)] = task

    async def _absence(self, table_id: uuid.UUID, player_id: str) -> None:
        try:
            await asyncio.sleep(self.settings.disconnect_grace_s)
            if not await self._set_away(table_id, player_id, True):
                return
            await asyncio.sleep(self.settings.sit_out_timeout_s)
            await self.seating.leave(table_id, uuid.UUID(player_id))
        except ProblemError as exc:
            log.info("absence ended", player=player_id, outcome=exc.detail)
        finally:
            if self.absences.get((table_id, player_id)) is asyncio.current_task():
                del self.absences[(table_id, player_id)]

    async def _set_away(self, table_id: uuid.UUID, player_id: str, away: bool) -> bool:
        """Sit a seated player out (or back in); announced to the table. False if they hold no seat."""
        runner = self.runner(table_id)
        async with runner.lock:
            async with self.sessions.begin() as session:
                table = await get_table(session, table_id, lock=True)
                seat = (
                    await session.execute(
                        select(Seat).where(
                            Seat.table_id == table_id,
                            Seat.player_id == uuid.UUID(player_id),
                            Seat.status == "seated",
                        )
                    )
                ).scalar_one_or_none()
                if seat is None or seat.sitting_out == away:
                    return seat is not None
                seat.sitting_out = away
                table.seq += 1
                hand = runner.hand
                acting_now = away and hand is not None and not hand.is_finished and hand.actor_seat == seat.seat_no
                if acting_now and table.current_hand_id is not None:
                    record = await session.get(HandRecord, table.current_hand_id)
                    if record is not None:
                        record.deadline = datetime.now(UTC)  # the clock acts for them now
                message = {
                    "type": "player-sitting-out" if away else "player-back",
                    "seq": table.seq,
                    "userId": player_id,
                    "seat": seat.seat_no,
                }
            if away:
                runner.away.add(seat.seat_no)
            else:
                runner.away.discard(seat.seat_no)
            self.hub.publish(table_id, [Outgoing(message)], runner.players)
            if acting_now:
                runner.deadline_ms = _now_ms()
                if runner.timer is not None:
                    runner.timer.cancel()
                runner.timer = asyncio.create_task(runner._clock(runner.hand_id), name=f"clock-{table_id}")
        if not away:
            runner.request_deal()
        return True

    # -- the clock's owner: a lease per table in Redis ------------------------------------------

    _RENEW = (
        "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end"
    )

    async def keep_leases(self, redis: Any, prefix: str) -> None:
        """Hold the leases of tables with a running hand, or take those whose holder is gone, and keep their
        clocks running here; forever, every ``lease_renew_s``. Correctness never rests on the lease (the
        table's row lock, the action count and the stored deadline guard every write): it only decides who
        keeps the clock, so a hand never waits for a dead instance longer than the lease's TTL."""
        me = str(uuid.uuid4())
        ttl_ms = int(self.settings.lease_ttl_s * 1000)
        while True:
            try:
                async with self.sessions() as session:
                    rows = await session.execute(
                        select(CashTable.id).where(CashTable.status != "closed", CashTable.current_hand_id.is_not(None))
                    )
                    running = list(rows.scalars())
                for table_id in running:
                    key = f"{prefix}:lease:{table_id}"
                    held = await redis.eval(self._RENEW, 1, key, me, ttl_ms)
                    if not held:
                        held = await redis.set(key, me, nx=True, px=ttl_ms)
                    if held:
                        await self._keep_clock(table_id)
            except Exception:  # Redis or the database away: try again next round
                log.warning("lease round failed", exc_info=True)
            await asyncio.sleep(self.settings.lease_renew_s)

    async def _keep_clock(self, table_id: uuid.UUID) -> None:
        runner = self.runner(table_id)
        if runner.timer is not None and not runner.timer.done():
            return
        async with runner.lock, self.sessions() as session:
            table = await get_table(session, table_id)
            await runner._load(session, table)
        if runner.hand is not None and not runner.hand.is_finished:
            runner.timer = asyncio.create_task(runner._clock(runner.hand_id), name=f"clock-{table_id}")

    async def rake_account(self, asset: str) -> uuid.UUID:
        if self._rake_account is None:
            self._rake_account = await self.seating.wallet.open_account("house", "house_rake", asset)
        return self._rake_account

    async def settle(self, hand_id: uuid.UUID) -> None:
        """The rake of a finished hand into the house rake account (transfer id from the hand), then settled."""
        async with self.sessions() as session:
            record = await session.get(HandRecord, hand_id)
            if record is None or record.status != "finished":
                return
            table = await get_table(session, record.table_id)
        if record.rake > 0:
            try:
                await self.seating.wallet.transfer(
                    transfer_id(hand_id, "rake"),
                    debit=table.escrow_account_id,
                    credit=await self.rake_account(table.asset),
                    amount=record.rake,
                    asset=table.asset,
                    code="table_rake",
                    metadata={"table_id": str(table.id), "hand_id": str(hand_id)},
                )
            except (ProblemError, OSError) as exc:
                log.warning("rake left for the reconciler", hand=str(hand_id), error=repr(exc))
                return
        async with self.sessions.begin() as session:
            record = await session.get(HandRecord, hand_id, with_for_update=True)
            if record is not None and record.status == "finished":
                record.status = "settled"

    async def reconcile(self) -> None:
        cutoff = datetime.now(UTC) - timedelta(seconds=self.settings.reconcile_grace_s)
        async with self.sessions() as session:
            rows = await session.execute(
                select(HandRecord.id).where(HandRecord.status == "finished", HandRecord.finished_at < cutoff).limit(100)
            )
            hands = list(rows.scalars())
        for hand_id in hands:
            await self.settle(hand_id)

    async def stop(self) -> None:
        for task in self.absences.values():
            task.cancel()
        for runner in self.runners.values():
            for task in (runner.timer, runner.next_deal, *runner.between):
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task
