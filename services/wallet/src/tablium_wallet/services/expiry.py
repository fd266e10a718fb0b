"""The expiry job: void pending transfers whose timeout passed, exactly once, with any number of instances.

Two short transactions. The claim marks due pending transfers as taken for a lease
(``FOR UPDATE SKIP LOCKED``: instances claim disjoint sets without waiting on each other) and locks
no account. The expiry then runs through the ledger like any void: accounts locked in id order, the
pending row deleted, the void transfer inserted. A pending transfer posted or voided meanwhile is
simply found resolved; one whose claimer died is claimed again when the lease runs out. The unique
``transfers.pending_id`` makes a second resolution impossible whatever happens.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import structlog
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tablium_kit.periodic import Periodic
from tablium_wallet.services.batch import execute
from tablium_wallet.services.transfers import Resolve, Result

log = structlog.get_logger("tablium.wallet.expiry")
LEASE = timedelta(seconds=30)

_CLAIM = text(
    "UPDATE pending_transfers SET claimed_until = :lease WHERE transfer_id IN ("
    "SELECT transfer_id FROM pending_transfers WHERE expires_at <= :now "
    "AND (claimed_until IS NULL OR claimed_until < :now) ORDER BY expires_at LIMIT :limit "
    "FOR UPDATE SKIP LOCKED) RETURNING transfer_id"
)


async def expire_due(
    sessions: async_sessionmaker[AsyncSession], *, now: datetime | None = None, limit: int = 500
) -> int:
    """Expire what is due at ``now``; returns how many pending transfers this call expired."""
    now = now or datetime.now(UTC)
    async with sessions() as session, session.begin():
        claimed = list((await session.execute(_CLAIM, {"now": now, "lease": now + LEASE, "limit": limit})).scalars())
    if not claimed:
        return 0
    async with sessions() as session, session.begin():
        outcomes = await execute(session, [Resolve(pending_id, "expire") for pending_id in claimed], now=now)
    return sum(1 for outcome in outcomes if isinstance(outcome, Result) and outcome.created)


def expiry_job(sessions: async_sessionmaker[AsyncSession], *, interval_s: float, batch_size: int) -> Periodic:
    """The job every wallet instance runs; a full batch means more may be due, so the next pass runs at once."""

    async def run_pass() -> bool:
        expired = await expire_due(sessions, limit=batch_size)
        if expired:
            log.info("pending transfers expired", count=expired)
        return expired >= batch_size

    return Periodic("wallet-expiry", run_pass, interval_s=interval_s)
