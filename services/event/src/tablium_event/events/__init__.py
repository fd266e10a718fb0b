"""Events the event service publishes, through the kit's transactional outbox.

Engine instructions become events in the same transaction as the state they come from:
the ``event.*`` facts of ARCHITECTURE.md §4, plus ``event.table_instructions`` carrying, in
order, everything the lobby must do at the tournament's tables (seat, move, hold, resume,
break a table, new level). ``event.elimination_undone`` follows a director's undo of a bust-out
(after it, the places corrected are announced again as ``event.player_eliminated``), and
``event.tie_ordered`` a director's ordering of a tie (the tie's places and prizes announced again, each
entry's own, replacing the shared ones); a prize carries
the tournament's ``asset``. Money and chips (prizes, stacks, blinds, the configuration's buy-in...) travel
as decimal strings (``amounts.to_wire``).

The table instructions of one fact grow with the field (1.6 MiB at a 10k-entrant start), over the kit's
cap on one event. They are cut, in the engine's order and only where the table changes, into ``parts``
events numbered by ``part`` (from 1), all with the fact's ``seq``; a lobby applies a ``seq``'s parts in
``part`` order (events may arrive out of order, ADR 0002).

``event.entry_fee_paid`` states the fee of every paid purchase (entry, re-entry, rebuy, add-on) per player,
for the rakeback service, and ``event.entry_fee_refunded`` each such fee given back (docs/events/event.md).
"""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from tablium_event.amounts import to_wire
from tablium_event.db.models import MESSAGING, TournamentRow
from tablium_event.domain.instructions import (
    AwardPrize,
    EliminatePlayer,
    EliminationUndone,
    EndBreak,
    Instruction,
    MovePlayer,
    NewLevel,
    StartBreak,
    TieOrdered,
    TournamentFinished,
    TournamentStarted,
)
from tablium_kit.messaging import Outbox
from tablium_kit.money import format_amount

outbox = Outbox("event", MESSAGING)

TOURNAMENT_CREATED = "event.tournament_created"
REGISTRATION_OPENED = "event.registration_opened"
TOURNAMENT_CANCELLED = "event.tournament_cancelled"
TABLE_INSTRUCTIONS = "event.table_instructions"
ENTRY_FEE_PAID = "event.entry_fee_paid"
ENTRY_FEE_REFUNDED = "event.entry_fee_refunded"

_FACTS: dict[type[Instruction], str] = {
    TournamentStarted: "event.tournament_started",
    NewLevel: "event.level_changed",
    StartBreak: "event.break_started",
    EndBreak: "event.break_ended",
    MovePlayer: "event.player_moved",
    EliminatePlayer: "event.player_eliminated",
    EliminationUndone: "event.elimination_undone",
    TieOrdered: "event.tie_ordered",
    TournamentFinished: "event.tournament_finished",
    AwardPrize: "event.prize_awarded",
}
# Instructions per event: well under the kit's MAX_EVENT_BYTES, whatever amounts become as strings.
PART_BUDGET_BYTES = 64 * 1024
_FOR_TABLES = frozenset(
    {"open_table", "seat_player", "move_player", "break_table", "hold_table", "resume_table", "new_level", "set_stack"}
)


async def publish(
    session: AsyncSession, tournament_id: uuid.UUID, version: int, type_: str, data: dict[str, Any]
) -> None:
    await outbox.add(
        session,
        type=type_,
        subject=str(tournament_id),
        data={"tournament_id": str(tournament_id), "seq": version, **to_wire(data)},
    )


async def entry_fee_paid(
    session: AsyncSession,
    row: TournamentRow,
    *,
    purchase_id: uuid.UUID,
    kind: str,
    player_id: uuid.UUID,
    entry_id: int | None,
    fee: int,
) -> None:
    """``event.entry_fee_paid`` (docs/events/event.md): the house's fee of one paid entry, re-entry, rebuy or
    add-on, in the transaction that records the purchase ``posted`` (a compare-and-set: once per purchase).
    The rakeback service accrues it like a hand's rake. A freeroll (no fee) states nothing."""
    await _entry_fee(session, ENTRY_FEE_PAID, row, purchase_id, kind, player_id, entry_id, fee)


async def entry_fee_refunded(
    session: AsyncSession,
    row: TournamentRow,
    *,
    purchase_id: uuid.UUID,
    kind: str,
    player_id: uuid.UUID,
    entry_id: int | None,
    fee: int,
) -> None:
    """``event.entry_fee_refunded`` (docs/events/event.md): a fee stated paid is given back, in the transaction
    that takes the posted purchase back (its compare-and-set ``posted -> refunding``: once per purchase). The
    rakeback service reverses what it accrued from the fee. Same fields as the fee's ``event.entry_fee_paid``."""
    await _entry_fee(session, ENTRY_FEE_REFUNDED, row, purchase_id, kind, player_id, entry_id, fee)


async def _entry_fee(
    session: AsyncSession,
    type_: str,
    row: TournamentRow,
    purchase_id: uuid.UUID,
    kind: str,
    player_id: uuid.UUID,
    entry_id: int | None,
    fee: int,
) -> None:
    if fee <= 0:
        return
    data = {
        "tournament_id": str(row.id),
        "seq": row.version,
        "purchase_id": str(purchase_id),
        "kind": kind,
        "player_id": str(player_id),
        "entry_id": entry_id,
        "club_id": str(row.club_id) if row.club_id else None,
        "union_id": str(row.union_id) if row.union_id else None,
        "asset": row.config["asset"],
        "fee": format_amount(fee),
    }
    await outbox.add(session, type=type_, subject=str(purchase_id), data=data)


async def publish_instructions(
    session: AsyncSession, tournament_id: uuid.UUID, version: int, instructions: list[Instruction], *, asset: str
) -> None:
    """One event per fact, and one batch of table instructions for the lobby."""
    for instruction in instructions:
        type_ = _FACTS.get(type(instruction))
        # A bust-out still waiting for its place is announced once placed; undone before that, it never was.
        unplaced = isinstance(instruction, (EliminatePlayer, EliminationUndone)) and instruction.place == 0
        if type_ is not None and not unplaced:
            data = instruction.to_dict()
            if isinstance(instruction, AwardPrize):
                data["asset"] = asset
            await publish(session, tournament_id, version, type_, data)
    parts = table_instruction_parts([i.to_dict() for i in instructions if i.kind in _FOR_TABLES])
    for number, part in enumerate(parts, 1):
        data = {"instructions": part, "part": number, "parts": len(parts)}
        await publish(session, tournament_id, version, TABLE_INSTRUCTIONS, data)


def table_instruction_parts(instructions: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """``instructions`` cut into consecutive parts of about ``PART_BUDGET_BYTES``, between tables: a run
    of one table's instructions (with the table-less ones after it, a new level) stays in one part."""
    runs: list[list[dict[str, Any]]] = []
    table: object = None
    for instruction in instructions:
        key = instruction.get("table", instruction.get("from_table"))
        if not runs or (key is not None and key != table):
            runs.append([])
            table = key if key is not None else table
        runs[-1].append(instruction)
    parts: list[list[dict[str, Any]]] = []
    size = 0
    for run in runs:
        run_size = sum(len(msgspec.json.encode(i)) + 1 for i in run)
        if not parts or size + run_size > PART_BUDGET_BYTES:
            parts.append([])
            size = 0
        parts[-1].extend(run)
        size += run_size
    return parts
