"""The journal and the snapshots: a running tournament is its last snapshot plus the facts after it.

``tournaments.state`` is the latest snapshot, taken at ``state_version``; every fact is one
``tournament_facts`` row ``(tournament, seq, kind, payload)`` written in the transaction of its effects.
The engine now = ``from_state(state)`` + the facts with ``seq > state_version``, in order
(docs/adr/0006-tournament-engine.md, "Persistence"). Nothing here commits: the caller owns the transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import structlog
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from tablium_event.db.models import Fact, Snapshot, TournamentRow
from tablium_event.domain.engine import RULES_VERSION, Tournament
from tablium_event.domain.facts import apply
from tablium_kit.errors import Conflict, ProblemError

log = structlog.get_logger("tablium.event")


class RulesVersionMismatch(ProblemError):
    """The journal since the snapshot was written by an engine of other rules: replaying it could make
    other decisions than the ones already published, so the tournament is not loaded (an operator's
    problem, not the client's: snapshot with the engine that wrote it, ``tablium-event snapshot``)."""

    status_code = 503
    title = "Engine rules changed"
    slug = "rules-version-mismatch"


def append(session: AsyncSession, row: TournamentRow, kind: str, payload: dict[str, Any]) -> None:
    """The fact that makes the row's next version, in the row's transaction."""
    row.version += 1
    session.add(Fact(tournament_id=row.id, seq=row.version, kind=kind, payload=payload, rules_version=RULES_VERSION))


async def snapshot(session: AsyncSession, row: TournamentRow, engine: Tournament, *, keep: int) -> None:
    """``engine`` (at ``row.version``) becomes the snapshot, in the row's transaction; the journal
    before the ``keep`` latest snapshots is pruned (``keep`` < 1 keeps it all: the audit trail). The latest
    snapshot and every fact after it always stay: they are the tournament."""
    row.state = engine.to_state()
    row.state_version = row.version
    session.add(Snapshot(tournament_id=row.id, version=row.version, rules_version=RULES_VERSION))
    if keep < 1:
        return
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


async def facts(session: AsyncSession, tournament_id: uuid.UUID, after: int, upto: int) -> Sequence[Fact]:
    if upto <= after:
        return []
    return (
        await session.scalars(
            select(Fact)
            .where(Fact.tournament_id == tournament_id, Fact.seq > after, Fact.seq <= upto)
            .order_by(Fact.seq)
        )
    ).all()


async def replay_onto(
    session: AsyncSession, tournament_id: uuid.UUID, engine: Tournament, at: int, version: int
) -> bool:
    """Bring ``engine`` (at version ``at``) to ``version`` by the facts journaled since (another process
    wrote them); False if the journal no longer has all of them (pruned), and the engine is untouched."""
    found = await facts(session, tournament_id, at, version)
    if len(found) != version - at:
        return False
    check_rules(tournament_id, at, None, found)
    for fact in found:
        apply(engine, fact.kind, fact.payload)
    return True


async def load(session: AsyncSession, tournament_id: uuid.UUID, version: int) -> tuple[int, Tournament]:
    """The engine at ``version`` (or at the snapshot, if that is newer: a reader may find one newer than its
    row) from the snapshot and the facts after it; returns (its version, the engine)."""
    state, state_version = (
        await session.execute(
            select(TournamentRow.state, TournamentRow.state_version).where(TournamentRow.id == tournament_id)
        )
    ).one()
    if state is None:
        raise Conflict("the tournament has not started")
    version = max(version, state_version)
    found = await facts(session, tournament_id, state_version, version)
    if len(found) != version - state_version:
        raise RuntimeError(f"tournament {tournament_id}: the journal after version {state_version} has a gap")
    check_rules(tournament_id, state_version, state.get("rules_version", 1), found)
    engine = Tournament.from_state(state)
    for fact in found:
        apply(engine, fact.kind, fact.payload)
    return version, engine


def check_rules(tournament_id: uuid.UUID, after: int, snapshot_rules: int | None, found: Sequence[Fact]) -> None:
    """Refuse to replay facts applied under other rules than this engine's (and a snapshot of newer
    rules, which this engine may not read right). A snapshot of older rules is fine: it is data, and
    these rules apply from it on — that is what snapshotting before a deploy is for."""
    if snapshot_rules is not None and snapshot_rules > RULES_VERSION:
        problem = f"its snapshot at version {after} was written by rules version {snapshot_rules}"
    else:
        other = sorted({fact.rules_version for fact in found if fact.rules_version != RULES_VERSION})
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
