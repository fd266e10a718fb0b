"""A table's full state as one viewer may see it, with its ``seq`` (hydration; the WebSocket snapshot)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tablium_lobby.db.models import HandRecord
from tablium_lobby.domain.protocol import PROTOCOL_VERSION, hand_view
from tablium_lobby.services.hand_log import committed_hand
from tablium_lobby.services.private import check_may_watch
from tablium_lobby.services.tables import active_seats, get_table, stakes_of


def role_of(viewer: str | None, host_id: uuid.UUID | None, seated: set[str]) -> str:
    if viewer is None:
        return "guest"
    if viewer in seated:
        return "player"
    if host_id is not None and str(host_id) == viewer:
        return "host"
    return "spectator"


async def table_state(
    sessions: async_sessionmaker[AsyncSession], table_id: uuid.UUID, viewer: str | None, *, check: bool = False
) -> dict[str, Any]:
    """Read in one REPEATABLE READ snapshot, so ``seq`` and the state it numbers agree; with ``check``,
    a private table is refused (Forbidden) to a viewer who may not watch it."""
    async with sessions() as session:
        await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        return await _read(session, table_id, viewer, check)


async def _read(session: AsyncSession, table_id: uuid.UUID, viewer: str | None, check: bool) -> dict[str, Any]:
    table = await get_table(session, table_id)
    seats = await active_seats(session, table_id)
    if check and viewer is not None:
        await check_may_watch(session, table, viewer, {str(s.player_id) for s in seats})
    hand_out: dict[str, Any] | None = None
    if table.current_hand_id is not None:
        record = await session.get(HandRecord, table.current_hand_id)
        if record is not None:
            players = {int(seat): player for seat, player in record.players.items()}
            viewer_seat = next((seat for seat, player in players.items() if player == viewer), None)
            hand = await committed_hand(session, record)
            hand_out = {
                "handId": str(record.id),
                "handNo": record.hand_no,
                "commitment": record.commitment,
                "deadline": int(record.deadline.timestamp() * 1000) if record.deadline else None,
                **hand_view(hand, viewer_seat, players),
            }
    stakes = stakes_of(table)
    seated = {str(s.player_id) for s in seats}
    return {
        "type": "snapshot",
        "version": PROTOCOL_VERSION,
        "seq": table.seq,
        "tableId": str(table.id),
        "role": role_of(viewer, table.host_id, seated),
        "table": {
            "name": table.name,
            "status": table.status,
            "seats": table.seat_count,
            "smallBlind": str(table.small_blind),
            "bigBlind": str(table.big_blind),
            "ante": str(table.ante),
            "minBuyIn": str(stakes.min_buy_in),
            "maxBuyIn": str(stakes.max_buy_in),
            "actionClockS": table.action_clock_s,
            "button": table.button,
        },
        "players": [
            {
                "seat": s.seat_no,
                "userId": str(s.player_id),
                "stack": str(s.stack),
                "status": s.status,
                "sittingOut": s.sitting_out,
                "timeBankMs": s.time_bank_ms,
            }
            for s in seats
        ],
        "hand": hand_out,
    }
