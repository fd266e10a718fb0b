"""The tables this process runs: their runners, their leases, presence, and the money after each hand.

:mod:`~tablium_lobby.services.runner` commits actions and keeps a table's clock;
:mod:`~tablium_lobby.services.dealing` starts and finishes hands; :mod:`~tablium_lobby.services.lease`
decides which instance runs a table. Money after a hand (the rake into the house rake account, cash-outs
of players who asked to leave) is a wallet call made after the commit, holding no lock;
:meth:`Dealer.reconcile` finishes any left undone.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tablium_kit.errors import ProblemError
from tablium_lobby.clients.wallet import transfer_id
from tablium_lobby.db.actions import ANYONE_LEAVING, MARK_SETTLED, SETTLEMENT
from tablium_lobby.db.models import CashTable, HandRecord, Seat
from tablium_lobby.domain.protocol import Outgoing
from tablium_lobby.services import rejoin
from tablium_lobby.services.commits import GroupCommit
from tablium_lobby.services.dealing import HANDS
from tablium_lobby.services.forward import Forwarder
from tablium_lobby.services.hand_log import committed_hand
from tablium_lobby.services.hub import Hub
from tablium_lobby.services.lease import LeaseKeeper, Leases
from tablium_lobby.services.presence import Presence
from tablium_lobby.services.rake import RakeBatcher
from tablium_lobby.services.runner import ACTIONS, ActionRefused, TableRunner
from tablium_lobby.services.seating import Seating
from tablium_lobby.services.stages import ActionClock
from tablium_lobby.services.tables import get_table
from tablium_lobby.settings import LobbySettings

__all__ = ["ACTIONS", "HANDS", "ActionRefused", "Dealer", "TableRunner"]

log = structlog.get_logger("tablium.lobby.dealer")


class Dealer:
    """Every table runner of this process, their leases, the house rake account, the settlement of hands."""

    def __init__(
        self,
        settings: LobbySettings,
        sessions: async_sessionmaker[AsyncSession],
        seating: Seating,
        hub: Hub,
        leases: Leases | None = None,
        presence: Presence | None = None,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.seating = seating
        self.hub = hub
        self.runners: dict[uuid.UUID, TableRunner] = {}
        self.group = GroupCommit(sessions, (ActionRefused,), enabled=settings.group_commits)
        seating.lanes = self.group.lanes
        self.absences: dict[tuple[uuid.UUID, str], asyncio.Task[None]] = {}
        # With leases, the holder runs the disconnect timers from the presence every instance shares.
        self.presence = presence if leases is not None else None
        self._tasks: set[asyncio.Task[None]] = set()
        self._gone: set[tuple[uuid.UUID, str]] = set()  # sockets closed, their presence not removed yet
        self._rake_account: uuid.UUID | None = None
        self.rakes = RakeBatcher(seating.wallet)  # the hands' rake transfers, many to a wallet request
        # With leases, only the holder of a table's lease keeps its clock, and its writes are fenced.
        self.keeper = LeaseKeeper(self, leases, settings.lease_renew_s) if leases is not None else None
        hub.on_relayed = self._on_relayed
        # Worker processes of one instance: an action goes to the sibling holding its table.
        self.forwarder = (
            Forwarder(self, leases, settings.forward_timeout_s) if leases is not None and settings.workers > 1 else None
        )

    @property
    def fenced(self) -> bool:
        return self.keeper is not None

    def runner(self, table_id: uuid.UUID) -> TableRunner:
        runner = self.runners.get(table_id)
        if runner is None:
            runner = self.runners[table_id] = TableRunner(self, table_id)
        return runner

    async def act(
        self,
        table_id: uuid.UUID,
        player_id: str,
        action: str,
        amount: int | None,
        seq: int,
        clock: ActionClock | None = None,
    ) -> None:
        """A player's action from a socket of this process: written by the sibling holding the table if
        one does (its cache is warm), else here. Raises :class:`ActionRefused`."""
        runner = self.runner(table_id)
        if self.forwarder is not None and runner.lease_token is None:
            holder = await self.forwarder.sibling_holding(table_id)
            if holder is not None and await self.forwarder.act(holder, table_id, player_id, action, amount, seq):
                return
        await runner.act(player_id, action, amount, seq, clock)

    # -- leases --------------------------------------------------------------------------------

    async def keep_leases(self) -> None:
        """Forever: renew this instance's leases and take free ones (or, without leases, nothing)."""
        if self.keeper is not None:
            await self.keeper.run()

    async def claim(self, table_id: uuid.UUID) -> bool:
        """Take the table's lease now if nobody holds it and this instance is within its share (a fresh
        table need not wait for a round); else the rounds find it a holder."""
        return self.keeper is not None and await self.keeper.claim_fresh(table_id)

    def own(self, table_id: uuid.UUID, epoch: int, token: str) -> None:
        runner = self.runner(table_id)
        runner.epoch, runner.lease_token = epoch, token
        runner.seq_seen = -1  # read everything again: the previous holder wrote since
        self.hub.watch(table_id)
        runner.nudge()

    def disown(self, table_id: uuid.UUID) -> None:
        runner = self.runners.get(table_id)
        if runner is None or (runner.lease_token is None and runner.epoch is None):
            return
        runner.epoch, runner.lease_token = None, None
        runner.stop_clock()
        self.hub.unwatch(table_id)
        for (table, player), task in list(self.absences.items()):
            if table == table_id and self.presence is not None:
                task.cancel()
                del self.absences[(table, player)]

    def _on_relayed(self, table_id: uuid.UUID, messages: list[Outgoing]) -> None:
        runner = self.runners.get(table_id)
        if runner is not None:
            runner.on_relayed(messages)

    async def on_seat_change(self, table_id: uuid.UUID, change: dict[str, object]) -> None:
        """Seating committed a change: tell the table, and deal if a hand can start."""
        runner = self.runner(table_id)
        self.hub.publish(table_id, [Outgoing(dict(change))], runner.players)
        if change.get("type") in ("player-joined", "stack-changed"):
            runner.request_deal()

    async def recover(self) -> None:
        """At start, without leases: resume every table (with leases, each table is resumed by whichever
        instance takes its lease)."""
        if self.keeper is not None:
            return
        async with self.sessions() as session:
            rows = await session.execute(select(CashTable.id).where(CashTable.status == "open"))
            table_ids = list(rows.scalars())
        for table_id in table_ids:
            self.runner(table_id).nudge()

    # -- presence: disconnect is not a free seat ---------------------------------------------

    def _spawn(self, work: Any) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def player_connected(self, table_id: uuid.UUID, player_id: str, *, sitting_out: bool = True) -> None:
        """A seated player's socket joined; ``sitting_out`` as its snapshot saw the seat (False: nothing to
        write, so a connect storm does not queue thousands of locked no-op transactions on the tables)."""
        task = self.absences.pop((table_id, player_id), None)
        if task is not None:
            task.cancel()
        if self.presence is not None:
            self._gone.discard((table_id, player_id))  # back before its departure was flushed
            self._spawn(self.presence.refresh([(table_id, player_id)]))
        if not sitting_out:
            return
        runner = self.runner(table_id)
        task = asyncio.create_task(self._set_away(table_id, player_id, False), name="back")
        runner.between.add(task)
        task.add_done_callback(runner.between.discard)

    def player_disconnected(self, table_id: uuid.UUID, player_id: str) -> None:
        if self.hub.connected(table_id, player_id):
            return
        if self.presence is not None:  # the lease holder notices and runs the timers
            # Gathered and removed in one round trip: thousands of sockets closing at once, each with a
            # Redis call of its own, emptied the Redis pool and the lease renewals failed with it.
            if not self._gone:
                self._spawn(self._flush_gone())
            self._gone.add((table_id, player_id))
            return
        if (table_id, player_id) not in self.absences:
            task = asyncio.create_task(self._absence(table_id, player_id), name=f"absence-{player_id}")
            self.absences[(table_id, player_id)] = task

    async def _flush_gone(self) -> None:
        await asyncio.sleep(0)  # the other sockets closing in this pass of the loop join the batch
        gone, self._gone = self._gone, set()
        assert self.presence is not None
        try:
            await self.presence.gone_many(gone)
        except Exception:  # harmless: the entries expire within the presence TTL
            log.warning("presence removal failed", players=len(gone))

    async def refresh_presence(self) -> None:
        """With every lease renewal: the players whose sockets this instance holds are present a while longer."""
        if self.presence is not None:
            await self.presence.refresh(
                (table_id, c.player_id)
                for table_id, connections in self.hub.tables.items()
                for c in connections
                if not c.closed.is_set()
            )

    async def check_presence_many(self, table_ids: list[uuid.UUID]) -> None:
        """:meth:`check_presence` of the tables this instance holds, their presence read in one round trip."""
        if self.presence is None:
            return
        for table_id, present in (await self.presence.present_many(table_ids)).items():
            await self.check_presence(table_id, present)

    async def check_presence(self, table_id: uuid.UUID, present: set[str] | None = None) -> None:
        """The lease holder, every round: an absence timer for each seated player with no socket anywhere."""
        runner = self.runners.get(table_id)
        if self.presence is None or runner is None or runner.epoch is None:
            return
        if present is None:
            present = await self.presence.present(table_id)
        for player in runner.seated:
            key = (table_id, player)
            if player in present:
                task = self.absences.pop(key, None)
                if task is not None:
                    task.cancel()
            elif key not in self.absences:
                self.absences[key] = asyncio.create_task(self._absence(table_id, player), name=f"absence-{player}")

    async def _still_absent(self, table_id: uuid.UUID, player_id: str) -> bool:
        if self.presence is None:
            return True
        runner = self.runners.get(table_id)
        return (
            runner is not None and runner.epoch is not None and player_id not in await self.presence.present(table_id)
        )

    async def _absence(self, table_id: uuid.UUID, player_id: str) -> None:
        try:
            await asyncio.sleep(self.settings.disconnect_grace_s)
            if not await self._still_absent(table_id, player_id):
                return
            if not await self._set_away(table_id, player_id, True):
                return
            await asyncio.sleep(self.settings.sit_out_timeout_s)
            if await self._still_absent(table_id, player_id):
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
                if away and table.current_hand_id is not None:
                    record = await session.get(HandRecord, table.current_hand_id, with_for_update=True)
                    if record is not None and record.status == "running":
                        hand = await committed_hand(session, record)
                        if not hand.is_finished and hand.actor_seat == seat.seat_no:
                            record.deadline = datetime.now(UTC)  # the clock acts for them now
                message = {
                    "type": "player-sitting-out" if away else "player-back",
                    "seq": table.seq,
                    "userId": player_id,
                    "seat": seat.seat_no,
                }
            runner.seq_seen = -1  # the seats (and maybe the deadline) changed: read them again
            self.hub.publish(table_id, [Outgoing(message)], runner.players)
        runner.nudge()
        if not away:
            runner.request_deal()
        return True

    # -- money after a hand -----------------------------------------------------------------------

    async def rake_account(self, asset: str) -> uuid.UUID:
        if self._rake_account is None:
            self._rake_account = await self.seating.wallet.open_account("house", "house_rake", asset)
        return self._rake_account

    async def settle(self, hand_id: uuid.UUID) -> None:
        """The rake of a finished hand into the house rake account (transfer id from the hand, sent with other
        hands' in one wallet request: services/rake.py), then settled.
        Two single statements on the lanes (no ORM, no transaction of their own): marking it settled is
        conditional on ``finished``, so a second settle (the reconciler's) changes nothing."""
        row = await self.group.lanes.fetch_one(SETTLEMENT, {"hand_id": hand_id})
        if row is None or row[0] != "finished":
            return
        rake, table_id, escrow, asset = int(row[1]), row[2], row[3], row[4]
        if rake > 0:
            try:
                status = await self.rakes.transfer(
                    transfer_id(hand_id, "rake"),
                    debit=escrow,
                    credit=await self.rake_account(asset),
                    amount=rake,
                    asset=asset,
                    metadata={"table_id": str(table_id), "hand_id": str(hand_id)},
                )
            except (ProblemError, OSError) as exc:
                log.warning("rake left for the reconciler", hand=str(hand_id), error=repr(exc))
                return
            if status >= 400:  # refused, as a transfer of its own would have been
                log.warning("rake left for the reconciler", hand=str(hand_id), status=status)
                return
        await self.group.lanes.fetch_one(MARK_SETTLED, {"hand_id": hand_id})

    async def anyone_leaving(self, table_id: uuid.UUID) -> bool:
        """Whether a seat at the table is to be cashed out between hands (one unlocked read: the locked
        cash-out runs only then; a leave committed after it finds no hand running and cashes out itself)."""
        row = await self.group.lanes.fetch_one(ANYONE_LEAVING, {"table_id": table_id})
        return bool(row is not None and row[0])

    async def reconcile(self) -> None:
        cutoff = datetime.now(UTC) - timedelta(seconds=self.settings.reconcile_grace_s)
        async with self.sessions() as session:
            rows = await session.execute(
                select(HandRecord.id).where(HandRecord.status == "finished", HandRecord.finished_at < cutoff).limit(100)
            )
            hands = list(rows.scalars())
        for hand_id in hands:
            await self.settle(hand_id)
        await rejoin.prune(self.sessions, self.settings.rejoin_ttl_s)

    async def stop(self) -> None:
        if self.keeper is not None:
            with contextlib.suppress(Exception):
                await self.keeper.release_all()
        for absence in self.absences.values():
            absence.cancel()
        for runner in self.runners.values():
            tasks: list[asyncio.Task[None] | None] = [runner.timer, runner.next_deal, runner.next_sync]
            for task in [*tasks, *runner.between]:
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task
        await self.rakes.stop()
        await self.group.stop()
