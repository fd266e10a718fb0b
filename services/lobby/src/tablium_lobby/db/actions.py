"""An action's writes as one statement (the hot path of a table: ADR 0012).

The table's ``seq`` moves on only if it is still the one the runner's cache was read at and the hand is
still the table's current one (the row lock the ``UPDATE`` takes serialises it with every other writer,
which take that row's lock first); then, in the same statement, the hand's action count, its turn and
deadline, and the ``hand_actions`` row. The hand's whole state is not written here (it grows with the
hand): the row is the record, and a reader replays the rows above the saved state's ``state_actions``
(services/hand_log.py). No row back: another writer moved the table, nothing was written.
Run alone it is its own transaction (one round trip: no BEGIN, no COMMIT); several queued for a lane go
in one round trip and one transaction (services/commits.py, ``Lanes.fetch_grouped``: each caller finds its
row by the ``hand_id`` it returns); in a group commit it joins the group's. The action that ends a hand is
``FINISH_HAND``, on the same terms: the action, the hand's end, the seats and the outbox row in one.
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

# The hand's last action and the hand's end in one statement (ADR 0012, seventh pass), on the same terms as
# RECORD_ACTION: nothing unless the table is still at the cached seq with this hand, which it then moves on
# and leaves handless. In the same statement: the action's row; the hand finished (its whole state saved,
# its result, rake and turn); each dealt seat still held by the player dealt in there gets its stack after,
# one more hand played and the time bank refill (dealing.refill_time_bank's rule, from the table's row
# as the UPDATE locked it); and the kit's outbox row for lobby.hand_completed (Outbox.row: the columns
# outbox.add writes, the others their defaults). Returns the hand, the action's number and the seats and
# events written. The ORM's finish_hand writes the same rows under the row lock (the locked path).
FINISH_HAND = text(
    """
    WITH moved AS (
        UPDATE cash_tables SET seq = seq + 1, current_hand_id = NULL
        WHERE id = :table_id AND seq = :seq AND current_hand_id = :hand_id
        RETURNING seq, time_bank_s, time_bank_refill_s, time_bank_refill_hands
    ), hand AS (
        UPDATE hands SET actions = hands.actions + 1, state_actions = hands.actions + 1, turn_seq = moved.seq,
            status = 'finished', rake = :rake, finished_at = :finished_at, deadline = NULL,
            state = CAST(CAST(:state AS text) AS jsonb), result = CAST(CAST(:result AS text) AS jsonb)
        FROM moved WHERE hands.id = :hand_id
        RETURNING hands.id, hands.actions
    ), acted AS (
        INSERT INTO hand_actions (hand_id, number, seq, seat, player_id, action, amount)
        SELECT hand.id, hand.actions, moved.seq, :seat, :player_id, :action, :amount FROM moved, hand
        RETURNING hand_id, number
    ), stacks AS (
        UPDATE seats SET stack = CAST(dealt.stack AS numeric), hands_played = seats.hands_played + 1,
            time_bank_ms = CASE
                WHEN moved.time_bank_refill_hands > 0 AND moved.time_bank_refill_s > 0
                    AND (seats.hands_played + 1) % moved.time_bank_refill_hands = 0
                THEN LEAST(CAST(moved.time_bank_s AS bigint) * 1000,
                           seats.time_bank_ms + CAST(moved.time_bank_refill_s AS bigint) * 1000)
                ELSE seats.time_bank_ms END,
            updated_at = :finished_at
        FROM moved,
            jsonb_to_recordset(CAST(CAST(:stacks AS text) AS jsonb)) AS dealt(seat int, player_id uuid, stack text)
        WHERE seats.table_id = :table_id AND seats.status IN ('buying_in', 'seated', 'leaving')
            AND seats.seat_no = dealt.seat AND seats.player_id = dealt.player_id
        RETURNING seats.id
    ), event AS (
        INSERT INTO outbox (id, type, subject, envelope, headers)
        SELECT :event_id, :event_type, :event_subject,
            CAST(CAST(:envelope_text AS text) AS jsonb), CAST(CAST(:headers_text AS text) AS jsonb)
        FROM moved
        RETURNING id
    )
    SELECT acted.hand_id, acted.number, (SELECT count(*) FROM stacks) AS seats, (SELECT count(*) FROM event) AS events
    FROM acted
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


@dataclass(frozen=True)
class HandEndWrite:
    """The hand's last action at table ``seq`` (the cached one) and the hand's end (``FINISH_HAND``); built
    by services/dealing.py (``hand_end_write``), which computes it as the ORM's ``finish_hand`` does."""

    table_id: uuid.UUID
    hand_id: uuid.UUID
    seq: int
    seat: int
    player_id: uuid.UUID
    action: str
    amount: int
    finished_at: datetime
    rake: int
    state: str  # JSON text: the hand's whole state
    result: str  # JSON text: the hands row's result
    stacks: str  # JSON text: [{"seat", "player_id", "stack"}] for every seat dealt in
    outbox: dict[str, Any]  # the kit's Outbox.row: id, type, subject, envelope_text, headers_text

    def params(self) -> dict[str, Any]:
        return {
            "table_id": self.table_id,
            "hand_id": self.hand_id,
            "seq": self.seq,
            "seat": self.seat,
            "player_id": self.player_id,
            "action": self.action,
            "amount": self.amount,
            "finished_at": self.finished_at,
            "rake": self.rake,
            "state": self.state,
            "result": self.result,
            "stacks": self.stacks,
            "event_id": self.outbox["id"],
            "event_type": self.outbox["type"],
            "event_subject": self.outbox["subject"],
            "envelope_text": self.outbox["envelope_text"],
            "headers_text": self.outbox["headers_text"],
        }
