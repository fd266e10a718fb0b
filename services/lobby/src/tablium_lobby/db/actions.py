"""An action's writes as one statement (the hot path of a table: ADR 0012).

The table's ``seq`` moves on only if it is still the one the runner's cache was read at and the hand is
still the table's current one (the row lock the ``UPDATE`` takes serialises it with every other writer,
which take that row's lock first); then, in the same statement, the hand's action count, its turn and
deadline, and the ``hand_actions`` row. The hand's whole state is not written here (it grows with the
hand): the row is the record, and a reader replays the rows above the saved state's ``state_actions``
(services/hand_log.py). No row back: another writer moved the table, nothing was written.
Run alone it is its own transaction (one round trip: no BEGIN, no COMMIT); several queued for a lane go
in one round trip and one transaction (services/commits.py, ``Lanes.fetch_grouped``: each caller finds its
row by the ``hand_id`` it returns); in a group commit it joins the group's.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text

RECORD_ACTION = text(
    """
    WITH moved AS (
        UPDATE cash_tables SET seq = seq + 1
        WHERE id = :table_id AND seq = :seq AND current_hand_id = :hand_id
        RETURNING seq
    ), hand AS (
        UPDATE hands SET actions = hands.actions + 1, turn_seq = moved.seq, deadline = :deadline
        FROM moved WHERE hands.id = :hand_id
        RETURNING hands.actions
    )
    INSERT INTO hand_actions (hand_id, number, seq, seat, player_id, action, amount)
    SELECT :hand_id, hand.actions, moved.seq, :seat, :player_id, :action, :amount FROM moved, hand
    RETURNING hand_id, number
    """
)

# After a hand (each a single statement on the hot path's lanes, services/commits.py): what settling its
# rake needs, the settlement recorded once, and whether any seat is to be cashed out between hands.
SETTLEMENT = text(
    "SELECT h.status, h.rake, t.id, t.escrow_account_id, t.asset FROM hands h "
    "JOIN cash_tables t ON t.id = h.table_id WHERE h.id = :hand_id"
)
MARK_SETTLED = text("UPDATE hands SET status = 'settled' WHERE id = :hand_id AND status = 'finished' RETURNING id")
ANYONE_LEAVING = text(
    "SELECT EXISTS (SELECT 1 FROM seats WHERE table_id = :table_id AND status = 'seated' AND leave_requested) "
    "OR EXISTS (SELECT 1 FROM cash_tables WHERE id = :table_id AND status = 'closing')"
)

# A top-up the wallet refused: its movement alone changes (the seat keeps its chips and its status), so one
# conditional statement on the lanes, no table lock; a second refusal (the reconciler's) changes nothing.
REFUSE_TOP_UP = text(
    "UPDATE chip_movements SET status = 'refused', reason = :reason, finished_at = :finished_at "
    "WHERE id = :movement_id AND kind = 'top_up' AND status = 'pending' RETURNING id"
)


@dataclass(frozen=True)
class ActionWrite:
    """A player's action at table ``seq`` (the cached one), moving the table to ``seq + 1``."""

    table_id: uuid.UUID
    hand_id: uuid.UUID
    seq: int
    seat: int
    player_id: uuid.UUID
    action: str
    amount: int
    deadline: datetime

    def params(self) -> dict[str, Any]:
        return {
            "table_id": self.table_id,
            "hand_id": self.hand_id,
            "seq": self.seq,
            "seat": self.seat,
            "player_id": self.player_id,
            "action": self.action,
            "amount": self.amount,
            "deadline": self.deadline,
        }
