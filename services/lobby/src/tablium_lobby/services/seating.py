"""Sitting down, topping up and leaving: money between a player's wallet account and the table's escrow.

Each is a saga (STYLE.md): under the table's row lock the intent is checked (duplicates included) and
recorded as a ``pending`` chip movement, and committed; then the wallet is called with transfer ids
derived from the movement's id, holding no lock; then the result is recorded. A crash between those
steps leaves a pending movement that :meth:`Seating.reconcile` finishes (same ids: one effect).

Lock order everywhere in the lobby: the table's row, then its seats and hands.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tablium_kit.errors import Conflict, InvalidInput, NotFound, ProblemError
from tablium_lobby.clients.wallet import PaymentRefused, Wallet, transfer_id
from tablium_lobby.db.actions import REFUSE_TOP_UP
from tablium_lobby.db.models import ACTIVE_SEAT, CashTable, ChipMovement, HandRecord, Seat
from tablium_lobby.events import PLAYER_LEFT, PLAYER_SEATED, outbox
from tablium_lobby.services.clubs import check_may_play, tables_with_leavers
from tablium_lobby.services.offers import claim_seat, release_refused
from tablium_lobby.services.private import check_may_sit
from tablium_lobby.services.tables import active_seats, finish_closing, get_table, stakes_of
from tablium_lobby.settings import LobbySettings

if TYPE_CHECKING:
    from tablium_lobby.services.commits import Lanes

log = structlog.get_logger("tablium.lobby.seating")

Notify = Callable[[uuid.UUID, dict[str, object]], Awaitable[None]]
Freed = Callable[[uuid.UUID], Awaitable[None]]


class BuyInRefused(ProblemError):
    status_code = 409
    title = "Buy-in refused"
    slug = "buy-in-refused"


class WalletPending(ProblemError):
    """The wallet could not be reached: the step is recorded and will be finished; ask again shortly."""

    status_code = 503
    title = "Service unavailable"
    slug = "service-unavailable"


@dataclass(frozen=True)
class LeaveResult:
    status: str  # "left" | "leaving_after_hand"
    cashed_out: int


async def dealt_in(session: AsyncSession, table: CashTable, seat_no: int) -> bool:
    """Whether ``seat_no`` is dealt into the hand running at ``table`` (call with the table locked)."""
    if table.current_hand_id is None:
        return False
    # Two columns, not the row: the hand's saved state (JSON, growing with the hand) is not needed here.
    row = (
        await session.execute(
            select(HandRecord.status, HandRecord.players).where(HandRecord.id == table.current_hand_id)
        )
    ).first()
    return row is not None and row[0] == "running" and str(seat_no) in row[1]


class Seating:
    def __init__(
        self,
        settings: LobbySettings,
        sessions: async_sessionmaker[AsyncSession],
        wallet: Wallet,
        notify: Notify | None = None,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.wallet = wallet
        self._notify = notify
        self._freed: Freed | None = None
        self._player_accounts: dict[uuid.UUID, uuid.UUID] = {}
        # Single statements, each its own transaction (the dealer's lanes, services/commits.py; None: the ORM's way).
        self.lanes: Lanes | None = None

    def set_notify(self, notify: Notify, freed: Freed | None = None) -> None:
        """``notify``: a committed seat change the table hears of; ``freed``: seats free without one."""
        self._notify = notify
        self._freed = freed

    async def notify(self, table_id: uuid.UUID, change: dict[str, object]) -> None:
        if self._notify is not None:
            await self._notify(table_id, change)

    async def seats_freed(self, table_id: uuid.UUID) -> None:
        """Seats at ``table_id`` are free with no message to the table (a new table, a refused buy-in)."""
        if self._freed is not None:
            await self._freed(table_id)

    async def player_account(self, player_id: uuid.UUID) -> uuid.UUID:
        account = self._player_accounts.get(player_id)
        if account is None:
            account = await self.wallet.open_account(f"player:{player_id}", "player", self.settings.asset)
            self._player_accounts[player_id] = account
        return account

    # -- sit down ------------------------------------------------------------------------------

    async def sit_down(
        self, table_id: uuid.UUID, player_id: uuid.UUID, seat_no: int, amount: int, offer_id: uuid.UUID | None = None
    ) -> Seat:
        """Take ``seat_no`` with ``amount`` chips bought from the player's wallet account (saga); a seat held
        for the waiting list only with its offer (``offer_id``, services/offers.py)."""
        async with self.sessions.begin() as session:
            table = await get_table(session, table_id, lock=True)
            if table.status != "open":
                raise Conflict("the table is closed")
            await check_may_sit(session, table, player_id)  # private tables: the host and approved members
            await check_may_play(session, table, player_id)  # club tables: members (projection)
            if seat_no >= table.seat_count:
                raise InvalidInput(f"the table has seats 0..{table.seat_count - 1}")
            stakes_of(table).check_buy_in(amount)
            seats = await active_seats(session, table_id)
            if any(s.player_id == player_id for s in seats):
                raise Conflict("you already have a seat at this table")
            if any(s.seat_no == seat_no for s in seats):
                raise Conflict(f"seat {seat_no} is taken")
            now = datetime.now(UTC)
            seat = Seat(
                id=uuid.uuid4(),
                table_id=table_id,
                seat_no=seat_no,
                player_id=player_id,
                stack=0,
                status="buying_in",
                leave_requested=False,
                sitting_out=False,
                time_bank_ms=table.time_bank_s * 1000,
                created_at=now,
                updated_at=now,
            )
            session.add(seat)
            await session.flush()  # the seat row before its movement (no ORM relationship orders them)
            await claim_seat(session, table_id, seat_no, player_id, seat.id, offer_id, now)
            movement = self._movement(seat, "buy_in", amount, now)
            session.add(movement)
        credited = await self._move_in(movement, table.escrow_account_id, table.asset, fresh=True)
        if credited is not None:
            return credited
        async with self.sessions() as session:
            seat = await session.get(Seat, seat.id) or seat
        return seat

    async def top_up(self, table_id: uuid.UUID, player_id: uuid.UUID, amount: int) -> Seat:
        """Add chips between hands, up to the table's maximum buy-in (saga, as a sit-down)."""
        async with self.sessions.begin() as session:
            table = await get_table(session, table_id, lock=True)
            seat = await self._seat_of(session, table_id, player_id)
            if seat.status != "seated" or seat.leave_requested:
                raise Conflict(f"a seat that is {seat.status} cannot top up")
            if await dealt_in(session, table, seat.seat_no):
                raise Conflict("top up between hands: you are dealt into the hand in progress")
            pending = await session.execute(
                select(ChipMovement.id).where(ChipMovement.seat_id == seat.id, ChipMovement.status == "pending")
            )
            if pending.first() is not None:
                raise Conflict("a buy-in or top-up of this seat is still in progress")
            maximum = stakes_of(table).max_buy_in
            if seat.stack + amount > maximum:
                raise InvalidInput(f"a top-up may bring the stack to at most {maximum} chips (now {seat.stack})")
            movement = self._movement(seat, "top_up", amount, datetime.now(UTC))
            session.add(movement)
        credited = await self._move_in(movement, table.escrow_account_id, table.asset, fresh=True)
        if credited is not None:
            return credited  # as its credit committed it: no third transaction to read it back
        async with self.sessions() as session:
            return await session.get(Seat, seat.id) or seat

    @staticmethod
    def _movement(seat: Seat, kind: str, amount: int, now: datetime) -> ChipMovement:
        return ChipMovement(
            id=uuid.uuid4(),
            seat_id=seat.id,
            table_id=seat.table_id,
            player_id=seat.player_id,
            kind=kind,
            amount=amount,
            status="pending",
            created_at=now,
        )

    async def _move_in(
        self, movement: ChipMovement, escrow: uuid.UUID, asset: str, *, fresh: bool = False
    ) -> Seat | None:
        """The wallet steps of a buy-in or top-up: a hold on the player's account, posted into the escrow.
        ``fresh``: the movement was just recorded, so no hold of its id can exist yet (no look-up first;
        the reconciler resuming one looks). The seat as the credit left it (None: credited elsewhere)."""
        hold = transfer_id(movement.id, "hold")
        try:
            account = await self.player_account(movement.player_id)
            transfer = None if fresh else await self.wallet.get_transfer(hold)
            if transfer is None:
                transfer = await self.wallet.transfer(
                    hold,
                    debit=account,
                    credit=escrow,
                    amount=movement.amount,
                    asset=asset,
                    code=f"table_{movement.kind}",
                    pending=True,
                    timeout_s=self.settings.hold_timeout_s,
                    metadata={"table_id": str(movement.table_id), "seat_id": str(movement.seat_id)},
                )
            if transfer["status"] == "pending":
                transfer = await self.wallet.post(hold)
        except PaymentRefused as exc:
            await self._refuse(movement, exc.detail)
            raise BuyInRefused(exc.detail, extra={"reason": exc.reason}) from exc
        except ProblemError as exc:
            if exc.status_code < 500 and exc.status_code != 409:
                await self._refuse(movement, exc.detail)
                raise BuyInRefused(exc.detail) from exc
            log.warning("buy-in left for the reconciler", movement=str(movement.id), error=exc.detail)
            raise WalletPending("the wallet is unavailable; the buy-in will be completed or refused") from exc
        except OSError as exc:
            log.warning("buy-in left for the reconciler", movement=str(movement.id), error=repr(exc))
            raise WalletPending("the wallet is unavailable; the buy-in will be completed or refused") from exc
        if transfer["status"] == "posted":
            return await self._credit(movement.id, movement.table_id)
        # voided or expired: the hold timed out before it was posted
        await self._refuse(movement, f"the hold was {transfer['status']}")
        raise BuyInRefused(f"the buy-in hold was {transfer['status']}")

    async def _credit(self, movement_id: uuid.UUID, table_id: uuid.UUID) -> Seat | None:
        """Record a buy-in or top-up (of a table's ``table_id``) as posted: the chips join the stack (once,
        under the lock). The seat as credited (None: the movement was no longer pending)."""
        async with self.sessions.begin() as session:
            table = await get_table(session, table_id, lock=True)
            movement = await session.get(ChipMovement, movement_id, with_for_update=True, populate_existing=True)
            assert movement is not None
            if movement.status != "pending":
                return None
            seat = await session.get(Seat, movement.seat_id, with_for_update=True)
            assert seat is not None
            movement.status = "done"
            movement.finished_at = datetime.now(UTC)
            seat.stack += movement.amount
            seat.updated_at = movement.finished_at
            first = seat.status == "buying_in"
            if first:
                seat.status = "seated"
                await outbox.add(
                    session,
                    type=PLAYER_SEATED,
                    subject=str(table.id),
                    data={
                        "table_id": str(table.id),
                        "player_id": str(seat.player_id),
                        "seat": seat.seat_no,
                        "buy_in": str(movement.amount),
                    },
                )
            table.seq += 1
            change: dict[str, object] = {
                "type": "player-joined" if first else "stack-changed",
                "userId": str(seat.player_id),
                "seat": seat.seat_no,
                "stack": str(seat.stack),
                "seq": table.seq,
            }
        await self.notify(table.id, change)
        return seat

    async def _refuse(self, refused: ChipMovement, reason: str) -> None:
        movement_id, now = refused.id, datetime.now(UTC)
        if refused.kind == "top_up" and self.lanes is not None:
            params = {"movement_id": movement_id, "reason": reason[:500], "finished_at": now}
            await self.lanes.fetch_one(REFUSE_TOP_UP, params)
            return
        async with self.sessions.begin() as session:
            await get_table(session, refused.table_id, lock=True)
            movement = await session.get(ChipMovement, movement_id, with_for_update=True, populate_existing=True)
            assert movement is not None
            if movement.status != "pending":
                return
            movement.status = "refused"
            movement.reason = reason[:500]
            movement.finished_at = now
            seat = await session.get(Seat, movement.seat_id, with_for_update=True)
            assert seat is not None
            freed = seat.status == "buying_in"
            if freed:
                seat.status = "refused"
                seat.updated_at = movement.finished_at
                await release_refused(session, seat.id, movement.finished_at)
        if freed:  # nobody at the table heard of this seat; the waiting list must
            await self.seats_freed(movement.table_id)

    # -- leave ---------------------------------------------------------------------------------

    async def leave(self, table_id: uuid.UUID, player_id: uuid.UUID) -> LeaveResult:
        """Leave and cash out: escrow → player; after the hand if the seat is dealt in.

        A repeated leave has no second effect: the seat is found leaving or left, under the table's lock.
        """
        async with self.sessions.begin() as session:
            table = await get_table(session, table_id, lock=True)
            seat = (
                await session.execute(
                    select(Seat)
                    .where(Seat.table_id == table_id, Seat.player_id == player_id)
                    .order_by(Seat.created_at.desc())
                    .limit(1)
                )
            ).scalar_one_or_none()
            if seat is None:
                raise NotFound("you have no seat at this table")
            if seat.status in ("left", "refused"):
                return LeaveResult("left", 0)
            if seat.status == "buying_in":
                raise Conflict("your buy-in is still in progress; leave once it is done")
            if seat.status == "leaving":
                movement = await self._pending_cash_out(session, seat.id)
                result = LeaveResult("left", movement.amount if movement else 0)
            elif await dealt_in(session, table, seat.seat_no):
                seat.leave_requested = True
                return LeaveResult("leaving_after_hand", 0)
            else:
                movement = await self.start_cash_out(session, table, seat)
                result = LeaveResult("left", movement.amount if movement else 0)
                left = {"type": "player-left", "userId": str(seat.player_id), "seat": seat.seat_no, "seq": table.seq}
        if movement is not None:
            await self.finish_cash_out(movement.id)
        elif seat.status == "left":
            await self.notify(table_id, left)
        return result

    async def _pending_cash_out(self, session: AsyncSession, seat_id: uuid.UUID) -> ChipMovement | None:
        return (
            await session.execute(
                select(ChipMovement).where(
                    ChipMovement.seat_id == seat_id, ChipMovement.kind == "cash_out", ChipMovement.status == "pending"
                )
            )
        ).scalar_one_or_none()

    async def start_cash_out(self, session: AsyncSession, table: CashTable, seat: Seat) -> ChipMovement | None:
        """Record the cash-out of ``seat`` (table locked, seat not dealt in); the caller commits, then
        calls :meth:`finish_cash_out`. A seat with no chips is left at once."""
        now = datetime.now(UTC)
        seat.leave_requested = False
        seat.updated_at = now
        if seat.stack == 0:
            await self._seat_left(session, table, seat, 0)
            return None
        movement = self._movement(seat, "cash_out", seat.stack, now)
        seat.stack = 0
        seat.status = "leaving"
        session.add(movement)
        await session.flush()
        return movement

    async def finish_cash_out(self, movement_id: uuid.UUID) -> None:
        """The wallet step of a cash-out (escrow → player, posted), then the seat is left."""
        async with self.sessions() as session:
            movement = await session.get(ChipMovement, movement_id)
            assert movement is not None
            table = await get_table(session, movement.table_id)
        if movement.status != "pending":
            return
        try:
            account = await self.player_account(movement.player_id)
            await self.wallet.transfer(
                transfer_id(movement.id, "cash_out"),
                debit=table.escrow_account_id,
                credit=account,
                amount=movement.amount,
                asset=table.asset,
                code="table_cash_out",
                metadata={"table_id": str(table.id), "seat_id": str(movement.seat_id)},
            )
        except (ProblemError, OSError) as exc:
            # The escrow holds these chips; only the wallet being away stops this. The reconciler retries.
            log.warning("cash-out left for the reconciler", movement=str(movement.id), error=repr(exc))
            return
        async with self.sessions.begin() as session:
            table = await get_table(session, movement.table_id, lock=True)
            current = await session.get(ChipMovement, movement_id, with_for_update=True)
            assert current is not None
            if current.status != "pending":
                return
            current.status = "done"
            current.finished_at = datetime.now(UTC)
            seat = await session.get(Seat, current.seat_id, with_for_update=True)
            assert seat is not None
            await self._seat_left(session, table, seat, current.amount)
            change: dict[str, object] = {"type": "player-left", "userId": str(seat.player_id), "seat": seat.seat_no}
            change["seq"] = table.seq
        await self.notify(table.id, change)

    async def _seat_left(self, session: AsyncSession, table: CashTable, seat: Seat, cashed_out: int) -> None:
        seat.status = "left"
        seat.updated_at = datetime.now(UTC)
        table.seq += 1
        await outbox.add(
            session,
            type=PLAYER_LEFT,
            subject=str(table.id),
            data={
                "table_id": str(table.id),
                "player_id": str(seat.player_id),
                "seat": seat.seat_no,
                "cashed_out": str(cashed_out),
            },
        )
        await session.flush()
        await finish_closing(session, table, await active_seats(session, table.id))

    async def _seat_of(self, session: AsyncSession, table_id: uuid.UUID, player_id: uuid.UUID) -> Seat:
        seat = (
            await session.execute(
                select(Seat).where(Seat.table_id == table_id, Seat.player_id == player_id, Seat.status.in_(ACTIVE_SEAT))
            )
        ).scalar_one_or_none()
        if seat is None:
            raise NotFound("you have no seat at this table")
        return seat

    # -- close -----------------------------------------------------------------------------------

    async def cash_out_idle(self, table_id: uuid.UUID) -> None:
        """Cash out every seat not dealt in whose player asked to leave (or whose table is closing)."""
        movements: list[uuid.UUID] = []
        emptied: list[dict[str, object]] = []
        async with self.sessions.begin() as session:
            table = await get_table(session, table_id, lock=True)
            for seat in await active_seats(session, table_id):
                if seat.status != "seated" or not (seat.leave_requested or table.status == "closing"):
                    continue
                if await dealt_in(session, table, seat.seat_no):
                    continue
                movement = await self.start_cash_out(session, table, seat)
                if movement is not None:
                    movements.append(movement.id)
                else:  # each seat left is its own seq: one message per seq, so none looks missing
                    emptied.append(
                        {"type": "player-left", "userId": str(seat.player_id), "seat": seat.seat_no, "seq": table.seq}
                    )
        for change in emptied:
            await self.notify(table_id, change)
        for movement_id in movements:
            await self.finish_cash_out(movement_id)

    async def stand_up_leavers(self) -> None:
        """Cash out seats whose player must go (a member who left the table's club) and is not dealt in; a
        seat dealt in goes after its hand (the runner's between-hands step)."""
        async with self.sessions() as session:
            tables = await tables_with_leavers(session)
        for table_id in tables:
            await self.cash_out_idle(table_id)

    # -- reconciler --------------------------------------------------------------------------------

    async def reconcile(self) -> int:
        """Finish chip movements left pending past the grace period (a crash, a wallet outage)."""
        cutoff = datetime.now(UTC) - timedelta(seconds=self.settings.reconcile_grace_s)
        async with self.sessions() as session:
            rows = await session.execute(
                select(ChipMovement, CashTable.escrow_account_id, CashTable.asset)
                .join(CashTable, CashTable.id == ChipMovement.table_id)
                .where(ChipMovement.status == "pending", ChipMovement.created_at < cutoff)
                .order_by(ChipMovement.created_at)
                .limit(100)
            )
            pending = list(rows.all())
        for movement, escrow, asset in pending:
            try:
                if movement.kind == "cash_out":
                    await self.finish_cash_out(movement.id)
                else:
                    await self._move_in(movement, escrow, asset)
            except ProblemError as exc:
                log.info("reconciled a chip movement", movement=str(movement.id), outcome=exc.detail)
        return len(pending)
