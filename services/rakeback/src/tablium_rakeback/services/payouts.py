"""Paying a period: one transaction requests every payout, the wallet's posting completes each.

:func:`pay_period` is the one writer of a period: under the accrual lock it inserts the period's
``payout_runs`` row (a second run, concurrent or after a crash, finds it and does nothing), accrues the
public tables' rakes by tier, groups every unpaid accrual total of periods up to this one by receiver
and asset into payouts (ids derived from period, receiver and asset), moves those totals to that payout,
marks their rakes paid and writes ``rakeback.payout_requested`` for each, all in that one transaction: a crash before
the commit leaves nothing, after it everything. Late hands of a paid period go to the next one.

The wallet pays each payout with transfer ids derived from the payout id (a redelivery pays once) and
posts ``wallet.transfer_posted``; :func:`complete_payout` then marks it completed and states
``rakeback.payout_completed`` once.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import String, Uuid, column, func, select, update, values
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from tablium_kit.money import format_amount
from tablium_rakeback.db.models import REFUNDED, Payout, PayoutRun, PlayerTier, Rake, accrual_totals
from tablium_rakeback.domain.periods import Period, payout_id
from tablium_rakeback.domain.split import Part, split, tier_layers
from tablium_rakeback.domain.tiers import Tier, tier_for
from tablium_rakeback.events import PAYOUT_COMPLETED, PAYOUT_REQUESTED, TIER_CHANGED, outbox
from tablium_rakeback.services import accrual, totals


@dataclass(frozen=True)
class RunResult:
    period: Period
    created: bool
    payouts: int


async def _accrue_tiers(
    session: AsyncSession, period: Period, tiers: dict[str, list[Tier]], window: timedelta, now: datetime
) -> None:
    """Public tables' rakes before the period's end, at each player's tier over the window ending then.

    Decided here rather than per hand: the tier depends on every hand of the window, which have all
    arrived by the period's run whatever their order (ADR 0011)."""
    rakes = (
        await session.scalars(
            select(Rake)
            .where(Rake.status == "tier", Rake.hand_time < period.end)
            .order_by(Rake.player_id, Rake.asset, Rake.hand_time, Rake.hand_id)
            .with_for_update()
        )
    ).all()
    standings: dict[tuple[uuid.UUID, str], tuple[str, int, int]] = {}
    accrued: list[tuple[Rake, list[Part]]] = []
    for rake in rakes:
        key = (rake.player_id, rake.asset)
        if key not in standings:
            rolling = await session.scalar(
                select(func.coalesce(func.sum(Rake.rake), 0)).where(
                    Rake.player_id == rake.player_id,
                    Rake.asset == rake.asset,
                    Rake.club_id.is_(None),
                    Rake.status != REFUNDED,  # a fee given back is no volume
                    Rake.hand_time >= period.end - window,
                    Rake.hand_time < period.end,
                )
            )
            standing = tier_for(int(rolling or 0), tiers.get(rake.asset, []))
            standings[key] = (standing.name, standing.bps, int(rolling or 0))
            await _announce_tier(session, rake.player_id, rake.asset, standings[key], now)
        name, bps, _ = standings[key]
        rake.status, rake.tier = "accrued", name
        accrued.append((rake, split(rake.rake, tier_layers(player_id=str(rake.player_id), bps=bps))))
    await totals.write_parts(session, accrued)
    await accrual.announce(session, accrued)


async def _announce_tier(
    session: AsyncSession, player_id: uuid.UUID, asset: str, standing: tuple[str, int, int], now: datetime
) -> None:
    name, bps, rolling = standing
    known = await session.get(PlayerTier, (player_id, asset), with_for_update=True)
    if known is not None and known.tier == name:
        known.rolling_rake = rolling
        return
    previous = known.tier if known else None
    if known is None:
        session.add(
            PlayerTier(player_id=player_id, asset=asset, tier=name, bps=bps, rolling_rake=rolling, changed_at=now)
        )
    else:
        known.tier, known.bps, known.rolling_rake, known.changed_at = name, bps, rolling, now
    await outbox.add(
        session,
        type=TIER_CHANGED,
        subject=str(player_id),
        data={
            "player_id": str(player_id),
            "asset": asset,
            "previous_tier": previous,
            "tier": name,
            "bps": bps,
            "rolling_rake": format_amount(rolling),
        },
    )


async def pay_period(
    session: AsyncSession,
    period: Period,
    *,
    tiers: dict[str, list[Tier]],
    tier_window: timedelta,
    now: datetime | None = None,
) -> RunResult:
    """Request every payout of ``period`` once; the caller commits."""
    now = now or datetime.now(UTC)
    await accrual.lock_for_facts(session)
    claimed = await session.scalar(
        insert(PayoutRun)
        .values(period_start=period.start, period_end=period.end, payouts=0, created_at=now)
        .on_conflict_do_nothing()
        .returning(PayoutRun.period_start)
    )
    if claimed is None:
        run = await session.get_one(PayoutRun, period.start)
        return RunResult(period, False, run.payouts)
    await _accrue_tiers(session, period, tiers, tier_window, now)
    # Set-based: totals per receiver, then each unpaid total moved to its payout's id and the rakes marked
    # paid. Nothing changes in between: the accrual lock is held. Totals are keyed on their hands' period,
    # so "hands before the period's end" is "periods starting before it".
    totals_table = accrual_totals
    scope = (
        totals_table.c.payout_id.is_(None),
        totals_table.c.kind != "platform",
        totals_table.c.period_start < period.end,
    )
    rows = await session.execute(
        select(totals_table.c.kind, totals_table.c.beneficiary, totals_table.c.asset, func.sum(totals_table.c.amount))
        .where(*scope)
        .group_by(totals_table.c.kind, totals_table.c.beneficiary, totals_table.c.asset)
    )
    totals = {(kind, beneficiary, asset): int(total) for kind, beneficiary, asset, total in rows}
    # A receiver whose total is negative (a paid fee's reversal exceeding what it earned since) is neither
    # paid nor marked: its accruals, the reversal with them, carry into the next period.
    ids = {key: payout_id(period.start, *key) for key, total in totals.items() if total >= 0}
    if ids:
        keys = values(
            column("kind", String),
            column("beneficiary", String),
            column("asset", String),
            column("payout_id", Uuid),
            name="payout_keys",
        ).data([(*key, pid) for key, pid in ids.items()])
        await session.execute(
            update(totals_table)
            .where(
                *scope,
                totals_table.c.kind == keys.c.kind,
                totals_table.c.beneficiary == keys.c.beneficiary,
                totals_table.c.asset == keys.c.asset,
            )
            .values(payout_id=keys.c.payout_id)
        )
    await session.execute(
        update(Rake)
        .where(Rake.status == "accrued", ~Rake.paid, Rake.period_start < period.end)
        .values(paid=True)
        .execution_options(synchronize_session=False)
    )
    payouts = 0
    for (kind, beneficiary, asset), amount in sorted(totals.items()):
        if amount <= 0:
            continue  # nothing to pay; zero accruals stay marked with the id nobody is paid, negative ones carry on
        pid = ids[(kind, beneficiary, asset)]
        session.add(
            Payout(
                payout_id=pid,
                period_start=period.start,
                kind=kind,
                beneficiary=beneficiary,
                asset=asset,
                amount=amount,
                status="requested",
                requested_at=now,
            )
        )
        await outbox.add(
            session,
            type=PAYOUT_REQUESTED,
            subject=str(pid),
            data={
                "payout_id": str(pid),
                "period_start": period.start.isoformat(),
                "period_end": period.end.isoformat(),
                "beneficiary_kind": kind,
                "beneficiary_id": beneficiary,
                "asset": asset,
                "amount": format_amount(amount),
            },
        )
        payouts += 1
    await session.execute(update(PayoutRun).where(PayoutRun.period_start == period.start).values(payouts=payouts))
    return RunResult(period, True, payouts)


async def complete_payout(session: AsyncSession, pid: uuid.UUID, transfer_id: uuid.UUID) -> None:
    done = await session.scalar(
        update(Payout)
        .where(Payout.payout_id == pid, Payout.status == "requested")
        .values(status="completed", completed_at=datetime.now(UTC), transfer_id=transfer_id)
        .returning(Payout.payout_id)
    )
    if done is None:
        return  # a redelivery, or a payout this service never requested
    payout = await session.get_one(Payout, pid)
    await outbox.add(
        session,
        type=PAYOUT_COMPLETED,
        subject=str(pid),
        data={
            "payout_id": str(pid),
            "period_start": payout.period_start.isoformat(),
            "beneficiary_kind": payout.kind,
            "beneficiary_id": payout.beneficiary,
            "asset": payout.asset,
            "amount": format_amount(payout.amount),
            "transfer_id": str(transfer_id),
        },
    )
