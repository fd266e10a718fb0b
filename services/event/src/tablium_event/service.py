"""Tournament use cases: the engine inside a row lock, its instructions into the outbox, money through the wallet.

Money protocol (docs/adr/0006-tournament-engine.md): every wallet step has a deterministic transfer
id and is recorded *before* it is attempted (a registration row in ``holding``, a prize row in
``owed``, a tournament in ``starting``/``cancelling``), so a retry or the reconciler can always
finish it, and replaying it never moves money twice. Registrations and purchases are state machines
moved forward by compare-and-set only (``db/steps.py``); no wallet call is made under the tournament's
row lock or with its engine checked out ("Sagas" in the ADR names each step and who finishes it).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn, TypeVar

import structlog
from sqlalchemy import ARRAY, Select, String, and_, any_, bindparam, delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tablium_event.clients.wallet import PaymentRefused, Wallet, transfer_id
from tablium_event.db.models import Fact, HandReport, Prize, Purchase, Registration, Snapshot, TournamentRow
from tablium_event.db.steps import advance
from tablium_event.domain.config import TournamentConfig, TournamentRuleError
from tablium_event.domain.engine import RULES_VERSION, Tournament
from tablium_event.domain.instructions import AwardPrize, Instruction
from tablium_event.events import (
    REGISTRATION_OPENED,
    TOURNAMENT_CANCELLED,
    TOURNAMENT_CREATED,
    publish,
    publish_instructions,
)
from tablium_event.journal import COMMANDS, Live, LiveEngines, apply, hand_payload
from tablium_event.services.reconciler import POOL_MISMATCHES, Backoff, attempt
from tablium_event.settings import EventSettings
from tablium_kit.db import Reader, Record
from tablium_kit.errors import Conflict, InvalidInput, NotFound, ProblemError

log = structlog.get_logger("tablium.event")
Paid = TypeVar("Paid", Registration, Purchase)

LIVE = ("holding", "held", "posting", "posted")
# A registration's money still to move (``_drive_registration``), or posted: what a cancel gives back.
REGISTRATION_LIVE = (*LIVE, "voiding", "refunding")
# A purchase not yet done (``_drive_purchase``), or posted: what a cancel gives back.
PURCHASE_UNDER_WAY = ("holding", "held", "posting", "voiding", "refunding")
PURCHASE_LIVE = (*PURCHASE_UNDER_WAY, "posted")
# Items of one kind the reconciler looks at per pass.
RECONCILE_BATCH = 500
EDITABLE = ("draft", "registering")


class RulesVersionMismatch(ProblemError):
    """The journal since the snapshot was written by an engine of other rules: replaying it could make
    other decisions than the ones already published, so the tournament is not loaded (an operator's
    problem, not the client's: snapshot with the engine that wrote it, ``tablium-event snapshot``)."""

    status_code = 503
    title = "Engine rules changed"
    slug = "rules-version-mismatch"


def rule_error(exc: TournamentRuleError) -> Conflict:
    return Conflict(str(exc))


def check_config(config: TournamentConfig) -> None:
    """The engine's rules, and the service's: rebuys and add-ons are sold at ``config.price`` (the
    buy-in into the pool, plus a rebuy's bounty part and fee), so they need a buy-in, and a rebuy needs
    a level to be bought in."""
    try:
        config.check()
    except TournamentRuleError as exc:
        raise InvalidInput(str(exc)) from exc
    if (config.rebuy_chips or config.addon_chips) and config.buy_in <= 0:
        raise InvalidInput("rebuys and add-ons cost the buy-in: they need a positive buy-in")
    if config.rebuy_chips and config.rebuy_until_level < 1:
        raise InvalidInput("rebuys need a last rebuy level (rebuy_until_level >= 1)")
    if config.rebuy_until_level and not config.rebuy_chips:
        raise InvalidInput("a rebuy period needs rebuy chips")
    if config.addon_chips and config.addon_level() is None:
        raise InvalidInput("add-ons are sold at the first break after the rebuy period: the structure has none")
    shares = config.payout.fixed_bp
    if shares and any(later > earlier for earlier, later in itertools.pairwise(shares)):
        # Checked here, not in the engine's check(): a stored configuration must still load.
        raise InvalidInput("fixed payout shares must not grow from one place to the next")


async def _in_order(
    session: AsyncSession,
    model: type[Paid],
    tournament_id: uuid.UUID,
    statuses: Sequence[str],
    *,
    offset: int = 0,
    limit: int | None = None,
) -> list[Paid]:
    """A tournament's registrations or purchases in these statuses, oldest first (the order entries replay in)."""
    rows = await session.scalars(
        select(model)
        .where(model.tournament_id == tournament_id, model.status.in_(statuses))
        .order_by(model.created_at, model.id)
        .offset(offset)
        .limit(limit)
        # Statuses move by compare-and-set (``db.steps.advance``), not through these objects: read them fresh.
        .execution_options(populate_existing=True)
    )
    return list(rows.all())


def _tournament_with_entries() -> Select[Any]:
    """A tournament without its engine state, and its live entries counted, in one statement."""
    tournaments = TournamentRow.__table__
    registrations = Registration.__table__
    live = bindparam("live", list(LIVE), type_=ARRAY(String))
    entries = (
        select(func.count())
        .where(registrations.c.tournament_id == tournaments.c.id, registrations.c.status == any_(live))
        .scalar_subquery()
    )
    columns = [column for column in tournaments.c if column.key != "state"]
    return select(*columns, entries.label("live_entries")).where(tournaments.c.id == bindparam("tournament_id"))


TOURNAMENT_WITH_ENTRIES = _tournament_with_entries()


class Tournaments:
    """One per app: the wallet client and the background clock and reconciler."""

    def __init__(self, settings: EventSettings, wallet: Wallet) -> None:
        self.settings = settings
        self.wallet = wallet
        self._house: dict[tuple[str, str], uuid.UUID] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self.engines = LiveEngines(settings.live_engines_max)
        self.backoff = Backoff()

    # ------------------------------------------------------------------ director

    async def create(
        self, session: AsyncSession, *, name: str, config: TournamentConfig, director: str
    ) -> TournamentRow:
        check_config(config)
        row = TournamentRow(name=name, config=config.to_dict(), created_by=director, status="draft", version=1)
        session.add(row)
        await session.flush()
        await publish(session, row.id, row.version, TOURNAMENT_CREATED, {"name": name, "config": row.config})
        return row

    async def edit(
        self, session: AsyncSession, tournament_id: uuid.UUID, *, name: str | None, config: TournamentConfig | None
    ) -> TournamentRow:
        row = await self._locked(session, tournament_id)
        if row.status not in EDITABLE:
            raise Conflict("a tournament can be edited only before it starts")
        if config is not None:
            registered = await self._registrations(session, row.id, LIVE) if row.status == "registering" else []
            if config.format == "sng" and len(registered) > config.seats_per_table:
                # The engine refuses a sit-and-go entry beyond its seats: the start would post every hold, then fail.
                raise Conflict(f"{len(registered)} players are registered: more than the sit-and-go's seats")
            if registered:
                current = TournamentConfig.from_dict(row.config)
                if (config.buy_in, config.fee, config.bounty, config.asset) != (
                    current.buy_in,
                    current.fee,
                    current.bounty,
                    current.asset,
                ):
                    raise Conflict("the price cannot change once players have registered")
            check_config(config)
            row.config = config.to_dict()
        if name is not None:
            row.name = name
        row.version += 1
        return row

    async def open_registration(self, session: AsyncSession, tournament_id: uuid.UUID) -> TournamentRow:
        """The pool account is opened before the row is locked (no wallet call under a lock; opening it
        again is free: the wallet keys it by owner, kind and asset), then the status moves under the lock."""
        row = await self.get(session, tournament_id)
        if row.status != "draft":
            raise Conflict("registration opens once, from draft")
        asset = TournamentConfig.from_dict(row.config).asset
        await session.commit()
        account = await self.wallet.open_account(f"tournament:{tournament_id}", "prize_pool", asset)
        row = await self._locked(session, tournament_id)
        if row.status != "draft" or TournamentConfig.from_dict(row.config).asset != asset:
            raise Conflict("the tournament changed meanwhile: try again")
        row.prize_pool_account_id = account
        row.status = "registering"
        row.version += 1
        await publish(session, row.id, row.version, REGISTRATION_OPENED, {"name": row.name, "config": row.config})
        return row

    async def start(self, session: AsyncSession, tournament_id: uuid.UUID) -> TournamentRow:
        """A saga: ``starting`` committed, then the entries posted a chunk at a time, then the engine built
        (``_finish_start``); the reconciler's ``start`` finishes one cut short. Holds not yet confirmed are
        taken first, with no lock held."""
        row = await self.get(session, tournament_id)
        for reg in await self._registrations(session, tournament_id, ("holding",)):
            await self._take_hold(session, row, reg)
        row = await self._locked(session, tournament_id)
        if row.status not in ("registering", "starting"):
            raise Conflict("the tournament is not open for a start")
        regs = await self._registrations(session, row.id, ("held", "posted"))
        ready = [r for r in regs if r.status in ("held", "posted")]
        if len(ready) < 2:
            if row.status == "starting":  # holds expired or failed since the start was begun
                return await self._abandon_start(session, row)
            raise Conflict("at least two registrations are needed to start")
        row.status = "starting"
        await session.commit()  # from here on a retry (or the reconciler) finishes the start
        return await self._finish_start(session, row, ready)

    async def _finish_start(
        self, session: AsyncSession, row: TournamentRow, ready: list[Registration]
    ) -> TournamentRow:
        """Post the entries (a chunk at a time, each chunk committed), then build the engine, once.

        Every step replays by its transfer id, so a start cut short anywhere is finished by calling this
        again (a retry of ``start``, or the reconciler); the engine is built only by the call that finds
        the tournament still ``starting`` under the row lock.
        """
        size = min(max(1, self.settings.wallet_batch_size), 200)  # the wallet's 64 KiB body limit
        for first in range(0, len(ready), size):
            await self._post_entries(session, row, ready[first : first + size])
            await session.commit()
        row = await self._locked(session, row.id)
        if row.status != "starting":
            return row  # another call finished (or cancelled) it meanwhile
        posted = await self._registrations(session, row.id, ("posted",))
        if len(posted) < 2:
            return await self._abandon_start(session, row)
        config = TournamentConfig.from_dict(row.config)
        engine = Tournament(config)
        out: list[Instruction] = []
        try:
            for reg in posted:  # in registration order (created_at, id): entry ids replay identically
                reg.entry_id, registered = engine.register(str(reg.player_id))
                out += registered  # a sit-and-go starts itself when its last seat is taken
            if engine.status == "registering":
                out += engine.start()
        except TournamentRuleError as exc:
            raise rule_error(exc) from exc
        row.started_at = datetime.now(UTC)
        row.status = "running"
        row.version += 1
        await self._snapshot(session, row, engine)
        await self._effects(session, row, engine, out)
        # Read before the commit: a failed commit expires the row, and the check-in below must not read it.
        tournament_id, version = row.id, row.version
        await self.engines.checkout(tournament_id)  # none yet: taken only so that nobody reads half of it
        kept: Live | None = None
        try:
            await session.commit()
            kept = Live(version, engine)
        finally:
            self.engines.checkin(tournament_id, kept)
        # A satellite whose pool buys a seat for everyone is over at once: its prizes are owed now.
        await self.pay_prizes(session, row.id)
        return row

    async def _abandon_start(self, session: AsyncSession, row: TournamentRow) -> NoReturn:
        """A start that cannot complete (fewer than two entries could be posted: holds expired or
        failed) is cancelled, not left ``starting``: posted entries refunded, holds voided, and
        ``event.tournament_cancelled`` published once (``_finish_cancel`` under the row lock)."""
        log.warning("start abandoned: fewer than two entries could be posted", tournament=str(row.id))
        row.status = "cancelling"
        await session.commit()  # from here on a retry (or the reconciler) finishes the cancel
        await self._finish_cancel(session, row)
        await session.commit()  # the cancel is done: the answer below is an error, which rolls back
        raise Conflict("fewer than two entries could be posted: the tournament was cancelled, every entry refunded")

    async def command(
        self, session: AsyncSession, tournament_id: uuid.UUID, action: str, **kwargs: Any
    ) -> TournamentRow:
        """pause, resume, undo, lock, tolerance: the engine decides; the result is saved and published."""
        if action not in COMMANDS:
            raise InvalidInput(f"unknown command {action}")
        row = await self._locked(session, tournament_id)
        async with self._fact(session, row) as engine:
            # What the clock did since the last fact is published with the command's own instructions.
            payload = {"now_ms": self._now_ms(row, engine), **kwargs}
            try:
                out = apply(engine, action, payload)
            except TournamentRuleError as exc:
                raise rule_error(exc) from exc
            await self._record(session, row, engine, action, payload, out)
        return row

    async def cancel(self, session: AsyncSession, tournament_id: uuid.UUID) -> TournamentRow:
        """Every entry gets back all it paid: holds are voided, posted buy-ins and fees refunded."""
        row = await self._locked(session, tournament_id)
        if row.status in ("finished", "cancelled"):
            raise Conflict("the tournament is over")
        engine = await self.engine_of(session, row)
        if engine is not None and (engine.prizes_paid or engine.bounties_paid):
            raise Conflict("prizes were already paid: the tournament cannot be cancelled")
        row.status = "cancelling"
        await session.commit()
        await self._finish_cancel(session, row)
        return row

    async def _finish_cancel(self, session: AsyncSession, row: TournamentRow) -> None:
        for reg in await self._registrations(session, row.id, REGISTRATION_LIVE):
            await self._give_back(session, row, reg)
        for purchase in await self._purchases(session, row.id, PURCHASE_LIVE):
            await self._give_back_purchase(session, purchase)
        row = await self._locked(session, row.id)
        if row.status != "cancelling":
            return
        if row.started_at is not None:
            async with self._fact(session, row) as engine:
                payload = {"now_ms": self._now_ms(row, engine)}
                out = apply(engine, "cancel", payload)
                row.status = "cancelled"
                await self._record(session, row, engine, "cancel", payload, out)
                await publish(session, row.id, row.version, TOURNAMENT_CANCELLED, {})
            return
        row.status = "cancelled"
        row.version += 1
        await publish(session, row.id, row.version, TOURNAMENT_CANCELLED, {})

    async def _give_back(self, session: AsyncSession, row: TournamentRow, reg: Registration) -> None:
        """A registration of a cancelled tournament: a hold is voided, an entry (posted, or being posted)
        refunded from where each part went; each a compare-and-set, then driven to its end."""
        if reg.status == "holding":
            await self._take_hold(session, row, reg)
        reason = "the tournament was cancelled"
        await advance(session, Registration, reg.id, "held", "voiding", failure=reason)
        await advance(session, Registration, reg.id, ("posting", "posted"), "refunding", failure=reason)
        await session.commit()
        await self._drive_registration(session, reg.id)

    async def _give_back_purchase(self, session: AsyncSession, purchase: Purchase) -> None:
        """A purchase of a cancelled tournament: a posted one goes back (refunding); one still under way is
        driven to its end, which the tournament no longer running makes a void or a refund."""
        if await advance(session, Purchase, purchase.id, "posted", "refunding", failure="the tournament was cancelled"):
            await session.commit()
        await self._drive_purchase(session, purchase.id)

    # ------------------------------------------------------------------ players

    async def register(self, session: AsyncSession, tournament_id: uuid.UUID, player_id: uuid.UUID) -> Registration:
        row = await self._locked(session, tournament_id)
        config = TournamentConfig.from_dict(row.config)
        engine = await self.engine_of(session, row)
        if row.status == "running":
            if engine is None or not engine.registration_open:
                raise Conflict("registration is closed")
        elif row.status != "registering":
            raise Conflict("registration is not open")
        mine = (
            await session.scalars(
                select(Registration).where(Registration.tournament_id == row.id, Registration.player_id == player_id)
            )
        ).all()
        if any(r.status in ("holding", "held", "posting") for r in mine) or (
            any(r.status == "posted" for r in mine)
            and (engine is None or not engine.by_player.get(str(player_id)) or self._has_live_entry(engine, player_id))
        ):
            raise Conflict("already registered")
        if row.status == "registering" and config.format == "sng":
            held = await self._registrations(session, row.id, ("holding", "held"))
            if len(held) >= config.seats_per_table:
                raise Conflict("the sit-and-go is full")
        entry_no = len(mine) + 1
        amount = config.buy_in + config.fee + config.bounty
        reg = Registration(
            tournament_id=row.id,
            player_id=player_id,
            entry_no=entry_no,
            # A freeroll takes no hold (the wallet refuses a zero amount): nothing to wait for.
            status="holding" if amount else "held",
            amount=amount,
            hold_transfer_id=transfer_id(row.id, "hold", player_id, entry_no),
        )
        session.add(reg)
        await session.commit()  # the row first: a hold can never exist without it
        if reg.status == "holding":
            await self._take_hold(session, row, reg)
        if reg.status == "failed":
            raise PaymentRefused(reg.failure or "the wallet refused the hold")
        if row.status == "running":
            reg = await self._drive_registration(session, reg.id)
            if reg.status in ("voided", "refunded", "failed"):
                raise Conflict(reg.failure or "the late registration was refused")
            return reg
        row = await self._locked(session, tournament_id)
        if config.format == "sng":
            held = await self._registrations(session, row.id, ("held",))
            if len(held) == config.seats_per_table:
                await session.commit()
                await self.start(session, row.id)
        return reg

    async def _drive_registration(self, session: AsyncSession, reg_id: uuid.UUID) -> Registration:
        """Move a registration of a running (or cancelled) tournament forward until it rests; returns it.

        A late entry: held -engine says yes-> posting -post, fee, apply "entry"-> posted (with its entry id)
                      held -engine says no-> voiding -void-> voided
                      posting -engine refuses now-> refunding -refund-> refunded
        A cancel: held -> voiding, posting/posted -> refunding (``_give_back``). A ``held`` registration
        of a tournament not yet running rests (the start posts it).

        Each arrow is a compare-and-set committed on its own; the engine's steps run under the row lock and
        no wallet call does. Finished after a crash by the reconciler (``_reconcile_late``).
        """
        while True:
            reg = await session.get(Registration, reg_id, populate_existing=True)
            assert reg is not None
            await session.commit()
            match reg.status:
                case "held" if reg.entry_id is None:
                    if not await self._decide_late_entry(session, reg):
                        return reg
                case "posting":
                    await self._post_late_entry(session, reg)
                case "voiding":
                    if await self._void_hold(reg) not in ("voided", "expired"):
                        raise Conflict(f"the hold of registration {reg.id} is not voided")
                    await advance(session, Registration, reg.id, "voiding", "voided")
                    await session.commit()
                case "refunding":
                    await self._refund_entry(session, reg)
                case _:
                    return reg

    async def _decide_late_entry(self, session: AsyncSession, reg: Registration) -> bool:
        """held -> posting | voiding under the row lock: the lock was let go while the wallet held the
        money, so the engine is asked again before the post. False if the registration rests (not running)."""
        row = await self._locked(session, reg.tournament_id)
        if row.status in ("registering", "starting"):
            await session.commit()
            return False
        refusal: str | None = "the tournament is not running"
        if row.status == "running":
            refusal = (await self._engine_now(session, row)).registration_refusal(str(reg.player_id))
        if refusal is None:
            await advance(session, Registration, reg.id, "held", "posting")
        else:
            await advance(session, Registration, reg.id, "held", "voiding", failure=refusal[:200])
        await session.commit()
        return True

    async def _post_late_entry(self, session: AsyncSession, reg: Registration) -> None:
        """posting -> posted | refunding | failed: the hold posted and the fee moved (no lock), then under
        the row lock the engine seats the entry in the transaction that records it ``posted``."""
        row = await self.get(session, reg.tournament_id)
        if reg.amount:
            result = await self.wallet.post(reg.hold_transfer_id)
            if result["status"] != "posted":
                failure = f"the hold is {result['status']}"
                await advance(session, Registration, reg.id, "posting", "failed", failure=failure)
                await session.commit()
                return
            await self._entry_fee(row, reg)
        await session.commit()
        row = await self._locked(session, reg.tournament_id)
        if await session.scalar(select(Registration.status).where(Registration.id == reg.id)) != "posting":
            await session.commit()  # another caller seated it (or gave it back) meanwhile
            return
        if row.status != "running":
            failure = "the tournament is not running"
            await advance(session, Registration, reg.id, "posting", "refunding", failure=failure)
            await session.commit()
            return
        async with self._fact(session, row) as engine:
            payload: dict[str, Any] = {"now_ms": self._now_ms(row, engine), "player": str(reg.player_id)}
            try:
                out = apply(engine, "entry", payload)
            except TournamentRuleError as exc:
                await advance(session, Registration, reg.id, "posting", "refunding", failure=str(exc)[:200])
                await session.commit()  # the engine that refused is not kept (nothing recorded)
                return
            entry_id = engine.by_player[str(reg.player_id)][-1]
            await advance(session, Registration, reg.id, "posting", "posted", entry_id=entry_id)
            await self._record(session, row, engine, "entry", payload, out)

    async def _entry_fee(self, row: TournamentRow, reg: Registration) -> None:
        """A posted entry's fee moves from the pool to the house. Replays are free."""
        config = TournamentConfig.from_dict(row.config)
        if config.fee and reg.amount:
            await self.wallet.transfer(
                transfer_id(row.id, "fee", reg.id),
                debit=self._pool(row),
                credit=await self._house_account("house_fees", config.asset),
                amount=config.fee,
                asset=config.asset,
                code="tournament_fee",
                metadata={"tournament_id": str(row.id)},
            )

    async def _refund_entry(self, session: AsyncSession, reg: Registration) -> None:
        """refunding -> refunded (or voided): the hold is posted if it was not yet (free if it was; a hold
        that expired meanwhile moved nothing), the fee replayed (free if it happened, so the house refunds
        only what it got), then the buy-in and bounty part back from the pool and the fee from the house."""
        row = await self.get(session, reg.tournament_id)
        config = TournamentConfig.from_dict(row.config)
        if reg.amount:
            result = await self.wallet.post(reg.hold_transfer_id)
            if result["status"] != "posted":
                await advance(session, Registration, reg.id, "refunding", "voided")
                await session.commit()
                return
            await self._entry_fee(row, reg)
            player = await self._player_account(reg, config)
            refunds = (
                ("refund", self._pool(row), config.buy_in + config.bounty),
                ("refund-fee", await self._house_account("house_fees", config.asset), config.fee),
            )
            for purpose, debit, amount in refunds:
                if amount:
                    await self.wallet.transfer(
                        transfer_id(row.id, purpose, reg.id),
                        debit=debit,
                        credit=player,
                        amount=amount,
                        asset=config.asset,
                        code="tournament_refund",
                        metadata={"tournament_id": str(row.id)},
                    )
        await advance(session, Registration, reg.id, "refunding", "refunded")
        await session.commit()

    async def unregister(self, session: AsyncSession, tournament_id: uuid.UUID, player_id: uuid.UUID) -> Registration:
        """held -> voiding (under the row lock, so a start cannot take it meanwhile) -> voided (the hold
        voided after the commit: no wallet call under the lock). A registration still ``holding`` has its
        hold confirmed first. The reconciler's ``_reconcile_late`` finishes a void cut short."""
        row = await self.get(session, tournament_id)
        for reg in await self._registrations(session, tournament_id, ("holding",)):
            if reg.player_id == player_id:
                await self._take_hold(session, row, reg)
        row = await self._locked(session, tournament_id)
        if row.status != "registering":
            raise Conflict("unregistering is possible only before the start")
        regs = [r for r in await self._registrations(session, row.id, ("held", "voiding")) if r.player_id == player_id]
        if not regs:
            raise NotFound("no registration to cancel")
        reg = regs[0]
        await advance(session, Registration, reg.id, "held", "voiding", failure="unregistered")
        await session.commit()
        reg = await self._drive_registration(session, reg.id)
        if reg.status != "voided":
            raise Conflict(f"the hold is {reg.status}")
        return reg

    @staticmethod
    def _has_live_entry(engine: Tournament, player_id: uuid.UUID) -> bool:
        return any(not engine.entries[e].busted for e in engine.by_player.get(str(player_id), []))

    async def buy(
        self, session: AsyncSession, tournament_id: uuid.UUID, player_id: uuid.UUID, kind: str, request_id: uuid.UUID
    ) -> Purchase:
        """A rebuy or an add-on of the player's live entry, at ``config.price(kind)`` (into the prize pool; a rebuy's
        fee then on to the house). A saga (``_drive_purchase``): the row is committed first, then each step
        commits on its own; the reconciler's ``_drive_purchase`` finishes one cut short.

        A retry with the same ``request_id`` — even twenty at once — finds its row (looked up under the
        row lock, so two first requests cannot both create it) and drives the same state machine, so the
        player is charged once and the engine applies the purchase once.
        """
        tid = transfer_id(tournament_id, kind, player_id, request_id)
        purchase = await session.scalar(select(Purchase).where(Purchase.transfer_id == tid))
        if purchase is None:
            purchase = await self._new_purchase(session, tournament_id, player_id, kind, tid)
        purchase = await self._drive_purchase(session, purchase.id)
        if purchase.status in ("failed", "voided", "refunded"):
            failure = purchase.failure or f"the {kind} was refused"
            raise PaymentRefused(failure) if purchase.status == "failed" else Conflict(failure)
        return purchase

    async def _new_purchase(
        self, session: AsyncSession, tournament_id: uuid.UUID, player_id: uuid.UUID, kind: str, tid: uuid.UUID
    ) -> Purchase:
        """The purchase's row, written (committed) before any money moves; looked up again under the row
        lock, so two first requests of one ``request_id`` cannot both create it."""
        row = await self._locked(session, tournament_id)
        purchase = await session.scalar(select(Purchase).where(Purchase.transfer_id == tid))
        if purchase is not None:
            await session.commit()
            return purchase
        if row.status != "running":
            raise Conflict("the tournament is not running")
        engine = await self._engine_now(session, row)
        entry_id = self._live_entry(engine, player_id)
        refusal = self._purchase_refusal(engine, kind, entry_id)
        if refusal is not None:
            raise Conflict(refusal)
        purchase = Purchase(
            transfer_id=tid,
            tournament_id=row.id,
            player_id=player_id,
            entry_id=entry_id,
            kind=kind,
            amount=TournamentConfig.from_dict(row.config).price(kind).total,
            status="holding",
        )
        session.add(purchase)
        await session.commit()  # the row first: a hold can never exist without it
        return purchase

    async def _engine_now(self, session: AsyncSession, row: TournamentRow) -> Tournament:
        """The engine to ask a question: the live one, which the question does not change; only when a level
        or break is due that no fact has applied yet, a throwaway engine (loaded, never the live one) ticked to now."""
        engine = await self.engine_of(session, row)
        assert engine is not None
        if self._clock_due(engine, row.started_at):
            engine = (await self._up_to_date(session, row.id, row.version, None)).engine
            engine.tick(self._now_ms(row, engine))
        return engine

    @staticmethod
    def _purchase_refusal(engine: Tournament, kind: str, entry_id: int) -> str | None:
        try:
            return engine.purchase_refusal(kind, entry_id)
        except TournamentRuleError as exc:
            return str(exc)

    async def _drive_purchase(self, session: AsyncSession, purchase_id: uuid.UUID) -> Purchase:
        """Move a purchase forward until it is done (posted, voided, failed, refunded); returns it then.

        holding -hold-> held -engine says yes-> posting -post, apply-> posted
                        held -engine says no-> voiding -void-> voided
                                    posting -engine refuses now-> refunding -refund-> refunded
        holding -wallet refuses-> failed; posting -hold expired-> failed.

        Each arrow is a compare-and-set (``db.steps.advance``) committed on its own; the engine's steps run
        under the row lock, but no wallet call does (a slow wallet never stalls the tournament's hands).
        Any number of callers may drive one purchase at once: the wallet calls replay by id, and only the
        caller whose compare-and-set matches records a result. A wallet error propagates (a 502 to the
        caller); the purchase stays where it was and the next caller or the reconciler goes on from there.
        """
        while True:
            purchase = await session.scalar(
                select(Purchase).where(Purchase.id == purchase_id).execution_options(populate_existing=True)
            )
            assert purchase is not None
            await session.commit()  # no snapshot or lock kept while the wallet is called
            match purchase.status:
                case "holding":
                    await self._hold_purchase(session, purchase)
                case "held":
                    await self._decide_purchase(session, purchase)
                case "posting":
                    await self._post_purchase(session, purchase)
                case "voiding":
                    await self._void_purchase(session, purchase)
                case "refunding":
                    await self._refund_purchase(session, purchase)
                case _:
                    return purchase

    async def _purchase_context(
        self, session: AsyncSession, purchase: Purchase
    ) -> tuple[TournamentRow, TournamentConfig]:
        row = await session.get(TournamentRow, purchase.tournament_id)
        assert row is not None
        return row, TournamentConfig.from_dict(row.config)

    async def _hold_purchase(self, session: AsyncSession, purchase: Purchase) -> None:
        """holding → held | failed: hold the price from the player's account into the pool (pending)."""
        row, config = await self._purchase_context(session, purchase)
        account = purchase.player_account_id or await self.wallet.open_account(
            f"player:{purchase.player_id}", "player", config.asset
        )
        try:
            result = await self.wallet.transfer(
                purchase.transfer_id,
                debit=account,
                credit=self._pool(row),
                amount=purchase.amount,
                asset=config.asset,
                code=f"tournament_{purchase.kind}",
                pending=True,
                timeout_s=self.settings.hold_timeout_s,
                metadata={"tournament_id": str(row.id), "entry": purchase.entry_id},
            )
        except PaymentRefused as exc:
            await advance(session, Purchase, purchase.id, "holding", "failed", failure=exc.detail[:200])
            await session.commit()
            return
        # "posted"/"voided": another caller got further meanwhile; its compare-and-set won, this one does nothing.
        if result["status"] in ("pending", "posted"):
            moved = await advance(session, Purchase, purchase.id, "holding", "held", player_account_id=account)
        else:
            failure = f"the hold is {result['status']}"
            moved = await advance(session, Purchase, purchase.id, "holding", "failed", failure=failure)
        await session.commit()
        if not moved and result["status"] == "pending":
            # A refusal recorded by another caller, then funds arrived and this hold went through: free it.
            current = await session.scalar(select(Purchase.status).where(Purchase.id == purchase.id))
            await session.commit()
            if current == "failed":
                await self.wallet.void(purchase.transfer_id)

    async def _decide_purchase(self, session: AsyncSession, purchase: Purchase) -> None:
        """held → posting | voiding, under the row lock: the lock was let go while the wallet held the money,
        so the engine is asked again before the post (a refusal leaves nothing moved: the hold is voided)."""
        row = await self._locked(session, purchase.tournament_id)
        if row.status != "running":
            refusal: str | None = "the tournament is not running"
        else:
            refusal = self._purchase_refusal(await self._engine_now(session, row), purchase.kind, purchase.entry_id)
        if refusal is None:
            await advance(session, Purchase, purchase.id, "held", "posting")
        else:
            await advance(session, Purchase, purchase.id, "held", "voiding", failure=refusal[:200])
        await session.commit()

    async def _post_purchase(self, session: AsyncSession, purchase: Purchase) -> None:
        """posting → posted | refunding | failed: post the hold and the fee (no lock), then, under the row
        lock, the engine applies the purchase in the transaction that records it ``posted`` — or refuses
        it now (the window closed since the decision), and the money goes back."""
        row, config = await self._purchase_context(session, purchase)
        result = await self.wallet.post(purchase.transfer_id)
        if result["status"] != "posted":
            await advance(
                session, Purchase, purchase.id, "posting", "failed", failure=f"the hold is {result['status']}"
            )
            await session.commit()
            return
        await self._purchase_fee(row, config, purchase)
        await session.commit()
        row = await self._locked(session, purchase.tournament_id)
        status = await session.scalar(select(Purchase.status).where(Purchase.id == purchase.id))
        if status != "posting":
            await session.commit()  # another caller applied it (or gave it back) meanwhile
            return
        if row.status != "running":
            await advance(
                session, Purchase, purchase.id, "posting", "refunding", failure="the tournament is not running"
            )
            await session.commit()
            return
        async with self._fact(session, row) as engine:
            payload = {"now_ms": self._now_ms(row, engine), "entry": purchase.entry_id}
            try:
                out = apply(engine, purchase.kind, payload)
            except TournamentRuleError as exc:
                await advance(session, Purchase, purchase.id, "posting", "refunding", failure=str(exc)[:200])
                await session.commit()  # the engine that refused is not kept (nothing recorded)
                return
            await advance(session, Purchase, purchase.id, "posting", "posted")
            await self._record(session, row, engine, purchase.kind, payload, out)

    async def _void_purchase(self, session: AsyncSession, purchase: Purchase) -> None:
        """voiding → voided: the hold is let go. Only a ``held`` purchase is ever voided, and only a
        ``posting`` one ever posted, so the wallet cannot answer "posted" here."""
        result = await self.wallet.void(purchase.transfer_id)
        if result["status"] not in ("voided", "expired"):
            raise Conflict(f"the hold of purchase {purchase.id} is {result['status']}, not voided")
        await advance(session, Purchase, purchase.id, "voiding", "voided")
        await session.commit()

    @staticmethod
    def _purchase_fee_part(config: TournamentConfig, purchase: Purchase) -> int:
        """The fee in what was charged: a purchase held before rebuys were charged their full price
        (its amount is the buy-in alone) carried none."""
        price = config.price(purchase.kind)
        return price.fee if purchase.amount == price.total else 0

    async def _purchase_fee(self, row: TournamentRow, config: TournamentConfig, purchase: Purchase) -> None:
        """A posted rebuy's fee part moves on from the pool to the house, as an entry's does. Replays are free."""
        fee = self._purchase_fee_part(config, purchase)
        if fee:
            await self.wallet.transfer(
                transfer_id(row.id, "fee", purchase.id),
                debit=self._pool(row),
                credit=await self._house_account("house_fees", config.asset),
                amount=fee,
                asset=config.asset,
                code="tournament_fee",
                metadata={"tournament_id": str(row.id), "kind": purchase.kind},
            )

    async def _refund_purchase(self, session: AsyncSession, purchase: Purchase) -> None:
        """refunding → refunded: the price back from where each part went: pool and bounty parts from the
        pool, the fee from the house. The fee's own transfer is replayed first (free if it happened), so the
        house refunds only what it received when a purchase was cut short between its post and its fee."""
        row, config = await self._purchase_context(session, purchase)
        assert purchase.player_account_id is not None
        fee = self._purchase_fee_part(config, purchase)
        await self._purchase_fee(row, config, purchase)
        refunds = (
            ("refund", self._pool(row), purchase.amount - fee),
            ("refund-fee", await self._house_account("house_fees", config.asset), fee),
        )
        for purpose, debit, amount in refunds:
            if amount:
                await self.wallet.transfer(
                    transfer_id(row.id, purpose, purchase.id),
                    debit=debit,
                    credit=purchase.player_account_id,
                    amount=amount,
                    asset=config.asset,
                    code="tournament_refund",
                    metadata={"tournament_id": str(row.id), "kind": purchase.kind},
                )
        await advance(session, Purchase, purchase.id, "refunding", "refunded")
        await session.commit()

    @staticmethod
    def _live_entry(engine: Tournament, player_id: uuid.UUID) -> int:
        live = [e for e in engine.by_player.get(str(player_id), []) if not engine.entries[e].busted]
        if not live:
            raise Conflict("you have no live entry in this tournament")
        return live[-1]

    # ------------------------------------------------------------------ tables (the lobby)

    async def hand_finished(
        self,
        session: AsyncSession,
        tournament_id: uuid.UUID,
        *,
        hand_id: str,
        table: int,
        stacks: dict[int, int],
        knockouts: dict[int, list[int]],
    ) -> dict[str, Any]:
        row = await self._locked(session, tournament_id)
        # Under the row lock: a copy of this report that got the lock first has committed its answer by now.
        done = await session.scalar(
            select(HandReport)
            .where(HandReport.tournament_id == tournament_id, HandReport.hand_id == hand_id)
            .execution_options(populate_existing=True)
        )
        if done is not None:
            return done.response
        if row.status != "running":
            raise Conflict("the tournament is not running")
        async with self._fact(session, row) as engine:
            payload = hand_payload(self._now_ms(row, engine), table, stacks, knockouts)
            try:
                out = apply(engine, "hand", payload)
            except TournamentRuleError as exc:
                raise rule_error(exc) from exc
            response = {
                "instructions": [i.to_dict() for i in out],
                "next_hand": engine.table_view(table) if table in engine.tables else None,
                "clock": engine.clock(),
            }
            session.add(HandReport(tournament_id=row.id, hand_id=hand_id, response=response))
            await self._record(session, row, engine, "hand", payload, out)
        await self.pay_prizes(session, row.id)
        return response

    # ------------------------------------------------------------------ prizes

    async def pay_prizes(self, session: AsyncSession, tournament_id: uuid.UUID) -> None:
        """Pay what is owed from the pool, the guarantee's overlay first brought to what is owed now (``_top_up``)."""
        owed = (
            await session.scalars(
                select(Prize).where(Prize.tournament_id == tournament_id, Prize.status == "owed").order_by(Prize.place)
            )
        ).all()
        if not owed:
            return
        row = await session.get(TournamentRow, tournament_id)
        assert row is not None
        config = TournamentConfig.from_dict(row.config)
        if config.guarantee:
            posted = len(await self._registrations(session, row.id, ("posted",)))
            # Only prize-pool parts count towards the guarantee: bounty parts are paid as bounties, fees are
            # the house's.
            bought = sum(config.price(p.kind).prize_pool for p in await self._purchases(session, row.id, ("posted",)))
            await session.commit()  # nothing locked or open while the wallet is called
            await self._top_up(row, config, max(0, config.guarantee - posted * config.buy_in - bought))
        for prize in owed:
            if not prize.amount:  # nothing to move (the wallet refuses a zero transfer)
                prize.status = "paid"
                await session.commit()
                continue
            player = await self.wallet.open_account(f"player:{prize.player_id}", "player", config.asset)
            await self.wallet.transfer(
                prize.transfer_id,
                debit=self._pool(row),
                credit=player,
                amount=prize.amount,
                asset=config.asset,
                code="tournament_prize",
                metadata={"tournament_id": str(row.id), "place": prize.place, "kind": prize.kind},
            )
            prize.status = "paid"
            await session.commit()

    async def _top_up(self, row: TournamentRow, config: TournamentConfig, owed: int) -> None:
        """Make the house's overlay in the pool ``owed`` (the guarantee less the prize-pool parts collected).

        One transfer per change of the amount owed: step k has the id ``transfer_id(t, "overlay", k)``,
        house -> pool when the overlay grows, pool -> house when it shrinks (a rebuy or a late entry after
        a top-up: the surplus goes back, never stranded in the pool). The wallet is the record: the steps
        already made are read back by id (a tournament topped up before this rule has one transfer with
        the id ``transfer_id(t, "overlay")``), so a retry after a crash continues with the next step, and
        two callers at once converge (the loser's step is refused as a different body, and its retry
        reads it back).
        """
        pool = self._pool(row)
        house = await self._house_account("house_adjustments", config.asset)
        given, step = await self._overlay_given(row)
        change = owed - given
        if change:
            await self.wallet.transfer(
                transfer_id(row.id, "overlay", step),
                debit=house if change > 0 else pool,
                credit=pool if change > 0 else house,
                amount=abs(change),
                asset=config.asset,
                code="tournament_overlay" if change > 0 else "tournament_overlay_return",
                metadata={"tournament_id": str(row.id), "step": step},
            )

    async def _overlay_given(self, row: TournamentRow) -> tuple[int, int]:
        """The overlay the house has put into the pool so far, read back from the wallet by the top-ups'
        step ids; and the next step's number."""
        pool = self._pool(row)

        def into_pool(transfer: dict[str, Any]) -> int:
            amount = int(transfer["amount"])
            return amount if uuid.UUID(str(transfer["credit_account_id"])) == pool else -amount

        legacy = await self.wallet.get_transfer(transfer_id(row.id, "overlay"))
        given = into_pool(legacy) if legacy is not None else 0
        step = 1
        while (made := await self.wallet.get_transfer(transfer_id(row.id, "overlay", step))) is not None:
            given += into_pool(made)
            step += 1
        return given, step

    async def check_pool(self, session: AsyncSession, tournament_id: uuid.UUID) -> bool | None:
        """The tournament-level invariant: the pool in the wallet = the pool by the engine's facts (less
        the overlay the house has not yet been asked for). None when money is on its way (a purchase or
        late entry under way, a prize owed) and the two may differ for a moment; else whether they agree.
        A mismatch is logged as an error and counted (``tablium_event_pool_mismatches_total``)."""
        row = await self.get(session, tournament_id)
        engine = await self.engine_of(session, row)
        under_way = await session.scalar(
            select(func.count())
            .select_from(Purchase)
            .where(Purchase.tournament_id == tournament_id, Purchase.status.in_(PURCHASE_UNDER_WAY))
        )
        under_way = (under_way or 0) + (
            await session.scalar(
                select(func.count())
                .select_from(Registration)
                .where(
                    Registration.tournament_id == tournament_id,
                    or_(
                        Registration.status.in_(("posting", "voiding", "refunding")),
                        and_(Registration.status == "held", Registration.entry_id.is_(None)),
                    ),
                )
            )
            or 0
        )
        owed = await session.scalar(
            select(func.count()).select_from(Prize).where(Prize.tournament_id == tournament_id, Prize.status == "owed")
        )
        await session.commit()
        if engine is None or under_way or owed:
            return None
        given, _ = await self._overlay_given(row)
        expected = engine.pool_held - (engine.prize_pool - engine.pool_collected) + given
        held = await self.wallet.balance(self._pool(row))
        if held == expected:
            return True
        POOL_MISMATCHES.inc()
        log.error("prize pool mismatch", tournament=str(tournament_id), wallet=held, engine=expected)
        return False

    # ------------------------------------------------------------------ views

    async def get(self, session: AsyncSession, tournament_id: uuid.UUID) -> TournamentRow:
        row = await session.get(TournamentRow, tournament_id)
        if row is None:
            raise NotFound("no such tournament")
        return row

    async def read(self, reader: Reader, tournament_id: uuid.UUID) -> Record:
        """A tournament for a read-only answer (``live_entries`` counted): one statement, no transaction."""
        row = await reader.one_or_none(TOURNAMENT_WITH_ENTRIES, tournament_id=tournament_id)
        if row is None:
            raise NotFound("no such tournament")
        return row

    async def newest(self, session: AsyncSession, limit: int) -> Sequence[TournamentRow]:
        return (await session.scalars(select(TournamentRow).order_by(TournamentRow.id.desc()).limit(limit))).all()

    async def entries(self, session: AsyncSession, tournament_id: uuid.UUID) -> int:
        return len(await self._registrations(session, tournament_id, LIVE))

    async def registered(
        self, session: AsyncSession, tournament_id: uuid.UUID, *, offset: int, limit: int
    ) -> Sequence[Registration]:
        """The live registrations (registered or entered), in registration order: the lobby's entry list."""
        await self.get(session, tournament_id)
        return await _in_order(session, Registration, tournament_id, LIVE, offset=offset, limit=limit)

    async def engine_of(self, session: AsyncSession, row: TournamentRow) -> Tournament | None:
        """The engine as of ``row.version`` (or newer), None before the start. Read it at once: it is the
        live engine, which the next fact changes."""
        if row.started_at is None:
            return None
        live = await self.engines.checkout(row.id)
        try:
            live = await self._up_to_date(session, row.id, row.version, live)
        except BaseException:
            self.engines.checkin(row.id, None)
            raise
        self.engines.checkin(row.id, live)
        return live.engine

    # ------------------------------------------------------------------ background: clock and reconciler

    async def start_background(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        if self.settings.clock_interval_s > 0:
            self._tasks.append(asyncio.create_task(self._loop(sessions, self.settings.clock_interval_s, self._clock)))
        if self.settings.reconcile_interval_s > 0:
            self._tasks.append(
                asyncio.create_task(self._loop(sessions, self.settings.reconcile_interval_s, self.reconcile))
            )

    async def stop_background(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    async def _loop(self, sessions: async_sessionmaker[AsyncSession], interval: float, step: Any) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                async with sessions() as session:
                    await step(session)
                    await session.commit()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("background step failed", step=step.__name__)

    async def _clock(self, session: AsyncSession) -> None:
        """Tick the running tournaments whose clock has something due. Only a tick that changes something
        is a fact (a level, a break): an idle one would only add the time elapsed, which the next fact's
        own tick adds anyway, so skipping it (leaving the cached engine untouched) keeps the replay exact
        without a journal row per tournament per second."""
        running = (
            await session.execute(
                select(TournamentRow.id, TournamentRow.version, TournamentRow.started_at).where(
                    TournamentRow.status == "running"
                )
            )
        ).all()
        await session.commit()
        for tournament_id, version, started_at in running:
            cached = self.engines.peek(tournament_id)
            if cached is not None and cached.version == version and not self._clock_due(cached.engine, started_at):
                continue  # the engine this process holds is current and nothing is due: no lock, no query
            row = await session.scalar(
                select(TournamentRow).where(TournamentRow.id == tournament_id).with_for_update(skip_locked=True)
            )
            if row is None or row.status != "running":
                await session.commit()
                continue
            try:
                engine = await self.engine_of(session, row)
                if engine is None or not self._clock_due(engine, row.started_at):
                    await session.commit()
                    continue
                async with self._fact(session, row) as engine:
                    payload = {"now_ms": self._now_ms(row, engine)}
                    out = apply(engine, "tick", payload)
                    await self._record(session, row, engine, "tick", payload, out)
            except RulesVersionMismatch:
                await session.rollback()  # logged where it was found; the other tournaments' clocks go on

    def _clock_due(self, engine: Tournament, started_at: datetime | None) -> bool:
        due = engine.next_clock_event_ms()
        return due is not None and self._now_ms_since(started_at, engine) >= due

    async def reconcile(self, session: AsyncSession) -> None:
        """Finish half-done wallet steps: holds not confirmed, late entries and purchases cut short, prizes
        owed, cancels and starts cut short. Each item on its own (``services.reconciler.attempt``): one that
        fails is logged, counted and retried later with backoff, and the others go on."""
        holding = await session.scalars(
            select(Registration.id)
            .join(TournamentRow, TournamentRow.id == Registration.tournament_id)
            .where(
                Registration.status == "holding",
                TournamentRow.status.in_(("registering", "running", "starting")),
            )
            .limit(RECONCILE_BATCH)
        )
        for reg_id in holding.all():
            await attempt(
                session, self.backoff, "hold", reg_id, functools.partial(self._reconcile_hold, session, reg_id)
            )
        # A late registration or a purchase cut short: only ones left alone for a while, so an answer still
        # on its way is not raced.
        quiet_since = datetime.now(UTC) - timedelta(seconds=self.settings.late_entry_grace_s)
        late = await session.scalars(
            select(Registration.id)
            .join(TournamentRow, TournamentRow.id == Registration.tournament_id)
            .where(
                or_(
                    and_(
                        Registration.status == "held",
                        Registration.entry_id.is_(None),
                        TournamentRow.status.in_(("running", "finished")),
                    ),
                    Registration.status.in_(("posting", "voiding", "refunding")),
                ),
                Registration.updated_at < quiet_since,
            )
            .limit(RECONCILE_BATCH)
        )
        for reg_id in late.all():
            await attempt(
                session, self.backoff, "late_entry", reg_id, functools.partial(self._reconcile_late, session, reg_id)
            )
        purchases = await session.scalars(
            select(Purchase.id)
            .where(Purchase.status.in_(PURCHASE_UNDER_WAY), Purchase.updated_at < quiet_since)
            .limit(RECONCILE_BATCH)
        )
        for purchase_id in purchases.all():
            # Posted and applied, or voided/refunded if the engine refuses now.
            await attempt(
                session,
                self.backoff,
                "purchase",
                purchase_id,
                functools.partial(self._drive_purchase, session, purchase_id),
            )
        owed = await session.scalars(select(Prize.tournament_id).where(Prize.status == "owed").distinct())
        for tournament_id in owed.all():
            await attempt(
                session,
                self.backoff,
                "prizes",
                tournament_id,
                functools.partial(self.pay_prizes, session, tournament_id),
            )
        cancelling = await session.scalars(select(TournamentRow.id).where(TournamentRow.status == "cancelling"))
        for tournament_id in cancelling.all():
            await attempt(
                session,
                self.backoff,
                "cancel",
                tournament_id,
                functools.partial(self._reconcile_cancel, session, tournament_id),
            )
        # The invariant, for every running tournament (a mismatch is logged and counted, never fixed here).
        running = await session.scalars(select(TournamentRow.id).where(TournamentRow.status == "running"))
        for tournament_id in running.all():
            await attempt(
                session, self.backoff, "pool", tournament_id, functools.partial(self.check_pool, session, tournament_id)
            )
        # Starts cut short after ``starting`` was committed: post what is left and build the engine.
        starting = await session.scalars(
            select(TournamentRow.id).where(TournamentRow.status == "starting", TournamentRow.updated_at < quiet_since)
        )
        for tournament_id in starting.all():
            await attempt(
                session,
                self.backoff,
                "start",
                tournament_id,
                functools.partial(self._reconcile_start, session, tournament_id),
            )

    async def _reconcile_hold(self, session: AsyncSession, reg_id: uuid.UUID) -> None:
        reg = await session.get(Registration, reg_id, populate_existing=True)
        assert reg is not None
        row = await session.get(TournamentRow, reg.tournament_id)
        assert row is not None
        if reg.status == "holding":
            await self._take_hold(session, row, reg)

    async def _reconcile_late(self, session: AsyncSession, reg_id: uuid.UUID) -> None:
        await self._drive_registration(session, reg_id)

    async def _reconcile_cancel(self, session: AsyncSession, tournament_id: uuid.UUID) -> None:
        await self._finish_cancel(session, await self.get(session, tournament_id))

    async def _reconcile_start(self, session: AsyncSession, tournament_id: uuid.UUID) -> None:
        try:
            await self.start(session, tournament_id)
        except Conflict as exc:  # e.g. cancelled meanwhile: nothing to retry, not a failure
            log.warning("a start cut short cannot be finished yet", tournament=str(tournament_id), error=str(exc))
            await session.rollback()

    # ------------------------------------------------------------------ internals

    async def _locked(self, session: AsyncSession, tournament_id: uuid.UUID) -> TournamentRow:
        row = await session.scalar(
            select(TournamentRow)
            .where(TournamentRow.id == tournament_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        if row is None:
            raise NotFound("no such tournament")
        return row

    async def _purchases(
        self, session: AsyncSession, tournament_id: uuid.UUID, statuses: Sequence[str]
    ) -> list[Purchase]:
        return await _in_order(session, Purchase, tournament_id, statuses)

    async def _registrations(
        self, session: AsyncSession, tournament_id: uuid.UUID, statuses: Sequence[str]
    ) -> list[Registration]:
        return await _in_order(session, Registration, tournament_id, statuses)

    @contextlib.asynccontextmanager
    async def _fact(self, session: AsyncSession, row: TournamentRow) -> AsyncIterator[Tournament]:
        """The live engine of ``row`` (locked) for one fact, up to date with the row's version.

        If the body recorded the fact (``_record``), the transaction is committed here and only then is
        the engine kept for the next fact; if it recorded nothing, raised, or the commit failed, the
        engine (possibly half-changed) is dropped.
        """
        # The id is read once, before anything can fail: after a failed commit the ORM row is expired, and
        # reading it in the ``finally`` would raise and leave the engine checked out for good.
        tournament_id = row.id
        live = await self.engines.checkout(tournament_id)
        kept: Live | None = None
        try:
            live = await self._up_to_date(session, tournament_id, row.version, live)
            before = row.version
            yield live.engine
            if row.version != before:
                version = row.version
                await session.commit()
                kept = Live(version, live.engine)
        finally:
            self.engines.checkin(tournament_id, kept)

    async def _up_to_date(
        self, session: AsyncSession, tournament_id: uuid.UUID, version: int, live: Live | None
    ) -> Live:
        """The engine at ``version`` (or newer): ``live`` as it is, or brought forward by the facts
        journaled since (another process wrote them), else the snapshot with the facts after it."""
        if live is not None and live.version >= version:
            return live
        if live is not None:
            facts = await self._facts(session, tournament_id, live.version, version)
            if len(facts) == version - live.version:
                self._check_rules(tournament_id, live.version, None, facts)
                for fact in facts:
                    apply(live.engine, fact.kind, fact.payload)
                live.version = version
                return live
        state, state_version = (
            await session.execute(
                select(TournamentRow.state, TournamentRow.state_version).where(TournamentRow.id == tournament_id)
            )
        ).one()
        if state is None:
            raise Conflict("the tournament has not started")
        version = max(version, state_version)  # a reader may find a snapshot newer than its row
        facts = await self._facts(session, tournament_id, state_version, version)
        if len(facts) != version - state_version:
            raise RuntimeError(f"tournament {tournament_id}: the journal after version {state_version} has a gap")
        self._check_rules(tournament_id, state_version, state.get("rules_version", 1), facts)
        engine = Tournament.from_state(state)
        for fact in facts:
            apply(engine, fact.kind, fact.payload)
        return Live(version, engine)

    @staticmethod
    def _check_rules(tournament_id: uuid.UUID, after: int, snapshot_rules: int | None, facts: Sequence[Fact]) -> None:
        """Refuse to replay facts applied under other rules than this engine's (and a snapshot of newer
        rules, which this engine may not read right). A snapshot of older rules is fine: it is data, and
        these rules apply from it on — that is what snapshotting before a deploy is for."""
        if snapshot_rules is not None and snapshot_rules > RULES_VERSION:
            problem = f"its snapshot at version {after} was written by rules version {snapshot_rules}"
        else:
            other = sorted({fact.rules_version for fact in facts if fact.rules_version != RULES_VERSION})
            if not other:
                return
            problem = f"facts after version {after} were journaled under rules version {', '.join(map(str, other))}"
        log.error(
            "tournament not loaded: engine rules changed",
            tournament=str(tournament_id),
            after=after,
            rules_version=RULES_VERSION,
            problem=problem,
        )
        raise RulesVersionMismatch(
            f"tournament {tournament_id} cannot be loaded by engine rules version {RULES_VERSION}: {problem}; "
            "snapshot it with the engine that wrote them (tablium-event snapshot) before deploying new rules"
        )

    @staticmethod
    async def _facts(session: AsyncSession, tournament_id: uuid.UUID, after: int, upto: int) -> Sequence[Fact]:
        if upto <= after:
            return []
        return (
            await session.scalars(
                select(Fact)
                .where(Fact.tournament_id == tournament_id, Fact.seq > after, Fact.seq <= upto)
                .order_by(Fact.seq)
            )
        ).all()

    def clock_of(self, row: TournamentRow, engine: Tournament) -> dict[str, Any]:
        """The lobby's clock, now: idle ticks are not journaled, so the engine's time may lag the wall clock."""
        return engine.clock(self._now_ms(row, engine))

    def _now_ms(self, row: TournamentRow, engine: Tournament) -> int:
        """Milliseconds since the start; never before the engine's own clock (another process, a clock step)."""
        return self._now_ms_since(row.started_at, engine)

    @staticmethod
    def _now_ms_since(started_at: datetime | None, engine: Tournament) -> int:
        started = started_at or datetime.now(UTC)
        return max(engine.now_ms, int((time.time() - started.timestamp()) * 1000))

    def _pool(self, row: TournamentRow) -> uuid.UUID:
        if row.prize_pool_account_id is None:
            raise Conflict("the tournament has no prize pool yet")
        return row.prize_pool_account_id

    async def _house_account(self, kind: str, asset: str) -> uuid.UUID:
        key = (kind, asset)
        if key not in self._house:
            self._house[key] = await self.wallet.open_account("house", kind, asset)
        return self._house[key]

    async def _player_account(self, reg: Registration, config: TournamentConfig) -> uuid.UUID:
        if reg.player_account_id is None:
            reg.player_account_id = await self.wallet.open_account(f"player:{reg.player_id}", "player", config.asset)
        return reg.player_account_id

    async def _take_hold(self, session: AsyncSession, row: TournamentRow, reg: Registration) -> None:
        """holding -> held | failed: hold buy-in + fee (+ bounty) from the player's account into the pool
        (pending; a freeroll takes none). Replays are free; the result is recorded by a compare-and-set and
        committed, and ``reg`` reloaded: a late answer never overwrites what another caller did since."""
        config = TournamentConfig.from_dict(row.config)
        moved: dict[str, Any]
        if not reg.amount:
            moved = {"status": "held"}
        else:
            player = await self._player_account(reg, config)
            try:
                result = await self.wallet.transfer(
                    reg.hold_transfer_id,
                    debit=player,
                    credit=self._pool(row),
                    amount=reg.amount,
                    asset=config.asset,
                    code="tournament_buy_in",
                    pending=True,
                    timeout_s=self.settings.hold_timeout_s,
                    metadata={"tournament_id": str(row.id), "entry_no": reg.entry_no},
                )
            except PaymentRefused as exc:
                moved = {"status": "failed", "failure": exc.detail[:200]}
            else:
                # "posted": another caller got further meanwhile; its compare-and-set won, this one moves nothing.
                if result["status"] in ("pending", "posted"):
                    moved = {"status": "held", "player_account_id": player}
                else:
                    moved = {"status": "failed", "failure": f"the hold is {result['status']}"}
        status = moved.pop("status")
        await advance(session, Registration, reg.id, "holding", status, **moved)
        await session.commit()
        await session.refresh(reg)

    async def _void_hold(self, reg: Registration) -> str:
        """Let a registration's hold go; its status in the wallet now (a freeroll has none: "voided")."""
        if not reg.amount:
            return "voided"
        result = await self.wallet.void(reg.hold_transfer_id)
        status: str = result["status"]
        return status

    async def _post_entries(self, session: AsyncSession, row: TournamentRow, regs: Sequence[Registration]) -> None:
        """A start's chunk: held -> posted | failed by compare-and-set (a cancel may have taken one to
        ``voiding`` meanwhile), the holds posted in one resolutions request, the fees of the posted ones in
        one batch (replayed by id). A freeroll's entries have no hold to post."""
        config = TournamentConfig.from_dict(row.config)
        held = [reg for reg in regs if reg.status == "held" and reg.amount]
        results = await self.wallet.post_many([reg.hold_transfer_id for reg in held]) if held else []
        for reg in regs:
            if reg.status == "held" and not reg.amount:
                await advance(session, Registration, reg.id, "held", "posted")
        for reg, result in zip(held, results, strict=True):
            if result["status"] == "posted":
                await advance(session, Registration, reg.id, "held", "posted")
            else:
                await advance(
                    session, Registration, reg.id, "held", "failed", failure=f"the hold is {result['status']}"
                )
        posted = set(
            (
                await session.scalars(
                    select(Registration.id).where(
                        Registration.id.in_([reg.id for reg in regs]), Registration.status == "posted"
                    )
                )
            ).all()
        )
        if not (config.fee and posted):
            return
        house = await self._house_account("house_fees", config.asset)
        await self.wallet.transfers(
            [
                {
                    "id": transfer_id(row.id, "fee", reg.id),
                    "debit": self._pool(row),
                    "credit": house,
                    "amount": config.fee,
                    "asset": config.asset,
                    "code": "tournament_fee",
                    "metadata": {"tournament_id": str(row.id)},
                }
                for reg in regs
                if reg.id in posted and reg.amount
            ]
        )

    async def _record(
        self,
        session: AsyncSession,
        row: TournamentRow,
        engine: Tournament,
        kind: str,
        payload: dict[str, Any],
        out: list[Instruction],
    ) -> None:
        """The fact applied to ``engine``: one journal row, a snapshot now and then, and its effects,
        all in the row's transaction."""
        row.version += 1
        session.add(
            Fact(tournament_id=row.id, seq=row.version, kind=kind, payload=payload, rules_version=RULES_VERSION)
        )
        if engine.status != "running" or row.version - row.state_version >= self.settings.snapshot_every:
            await self._snapshot(session, row, engine)
        await self._effects(session, row, engine, out)

    async def _snapshot(self, session: AsyncSession, row: TournamentRow, engine: Tournament) -> None:
        """``engine`` (at ``row.version``) becomes the snapshot, in the row's transaction; the journal
        before the snapshots kept (``keep_snapshots``) is pruned. The latest snapshot and every fact
        after it always stay: they are the tournament."""
        row.state = engine.to_state()
        row.state_version = row.version
        session.add(Snapshot(tournament_id=row.id, version=row.version, rules_version=RULES_VERSION))
        keep = self.settings.keep_snapshots
        if keep < 1:
            return  # the whole journal is kept (the audit trail)
        await session.flush()
        older = await session.scalar(
            select(Snapshot.version)
            .where(Snapshot.tournament_id == row.id)
            .order_by(Snapshot.version.desc())
            .offset(keep)
            .limit(1)
        )
        if older is None:
            return
        # Facts up to a snapshot older than the latest ``keep`` ones: covered by every later snapshot.
        await session.execute(delete(Fact).where(Fact.tournament_id == row.id, Fact.seq <= older))
        await session.execute(delete(Snapshot).where(Snapshot.tournament_id == row.id, Snapshot.version <= older))

    async def snapshot_running(self, session: AsyncSession) -> list[tuple[uuid.UUID, int]]:
        """Snapshot every running tournament whose journal has facts after its snapshot (the step before
        a deploy that changes the engine's rules: run by the engine that wrote the journal). Returns
        (tournament, version) of each snapshot taken; each is committed on its own."""
        taken: list[tuple[uuid.UUID, int]] = []
        ids = (await session.scalars(select(TournamentRow.id).where(TournamentRow.status == "running"))).all()
        for tournament_id in ids:
            row = await self._locked(session, tournament_id)
            if row.status != "running" or row.state_version >= row.version:
                await session.commit()
                continue
            version = row.version
            live = await self.engines.checkout(tournament_id)
            try:
                live = await self._up_to_date(session, tournament_id, version, live)
                await self._snapshot(session, row, live.engine)
                await session.commit()
            except BaseException:
                self.engines.checkin(tournament_id, None)  # not row.id: a failed commit expired the row
                raise
            self.engines.checkin(tournament_id, live)  # same version, same state: still current
            taken.append((tournament_id, version))
            log.info("snapshot taken", tournament=str(tournament_id), version=version, rules_version=RULES_VERSION)
        return taken

    async def _effects(
        self, session: AsyncSession, row: TournamentRow, engine: Tournament, out: list[Instruction]
    ) -> None:
        """Prizes owed and events out, for the instructions of the fact that made ``row.version``."""
        if engine.status == "finished":
            row.status = "finished"
        bounty_index = 0
        for instruction in out:
            if isinstance(instruction, AwardPrize):
                if instruction.prize == "place":
                    prize_id = transfer_id(row.id, "prize", instruction.place, instruction.entry)
                else:
                    prize_id = transfer_id(row.id, "bounty", row.version, bounty_index)
                    bounty_index += 1
                session.add(
                    Prize(
                        transfer_id=prize_id,
                        tournament_id=row.id,
                        player_id=uuid.UUID(instruction.player),
                        entry_id=instruction.entry,
                        place=instruction.place,
                        kind=instruction.prize,
                        amount=instruction.amount,
                    )
                )
        await publish_instructions(session, row.id, row.version, out, asset=row.config["asset"])
