"""A hand's start and end.

Start (the caller's transaction, the table's row locked): the seats that can play, the button, a fresh
seed and its commitment, the ``hands`` row and the ``hand-start`` message. End: the result, the seats'
stacks, the time bank refill, ``lobby.hand_completed`` in the outbox and the ``round-result`` message,
written one of two ways that commit the same rows: through the ORM under the row lock
(:func:`finish_hand`, the locked path) or as one conditional statement (:func:`hand_end_write`, the hot
path: db/actions.py ``FINISH_HAND``). What they write is computed once, here (:func:`hand_end`).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncSession

from tablium_kit.messaging import events_committed
from tablium_lobby.db.actions import HandEndWrite
from tablium_lobby.db.models import CashTable, HandRecord, Seat
from tablium_lobby.domain.protocol import Outgoing, event_messages, pots_out
from tablium_lobby.domain.summary import PlayerResult, summarize
from tablium_lobby.events import HAND_COMPLETED, outbox
from tablium_lobby.services.tables import active_seats, stakes_of
from tablium_poker import Hand, commitment, deck_from_seed, new_seed
from tablium_poker.rules import clockwise_from_button

HANDS = Counter("tablium_lobby_hands", "Hands completed", ["big_blind"])


@dataclass
class Started:
    record: HandRecord
    hand: Hand
    players: dict[int, str]
    banks: dict[int, int]
    messages: list[Outgoing]


async def start_hand(session: AsyncSession, table: CashTable) -> Started | None:
    """Deal a hand if none is running and two or more seated players (not sitting out) have chips."""
    if table.current_hand_id is not None or table.status != "open":
        return None
    seats = [
        s
        for s in await active_seats(session, table.id)
        if s.status == "seated" and s.stack > 0 and not s.sitting_out and not s.leave_requested
    ]
    if len(seats) < 2:
        return None
    occupied = [s.seat_no for s in seats]
    previous = table.button if table.button is not None else max(occupied)
    button = clockwise_from_button(occupied, previous)[0]
    seed = new_seed()
    hand = Hand.start(stakes_of(table).rules(), {s.seat_no: s.stack for s in seats}, button, deck_from_seed(seed))
    now = datetime.now(UTC)
    table.seq += 1
    table.button = button
    table.hands_dealt += 1
    record = HandRecord(
        id=uuid.uuid4(),
        table_id=table.id,
        hand_no=table.hands_dealt,
        seed=seed,
        commitment=commitment(seed),
        players={str(s.seat_no): str(s.player_id) for s in seats},
        state=hand.to_dict(),
        status="running",
        actions=0,
        deadline=now + timedelta(seconds=table.action_clock_s),
        turn_seq=table.seq,
        rake=0,
        started_at=now,
    )
    session.add(record)
    await session.flush()
    table.current_hand_id = record.id
    players = {s.seat_no: str(s.player_id) for s in seats}
    start = Outgoing(
        {
            "type": "hand-start",
            "seq": table.seq,
            "handId": str(record.id),
            "handNo": record.hand_no,
            "button": button,
            "smallBlind": str(table.small_blind),
            "bigBlind": str(table.big_blind),
            "ante": str(table.ante),
            "commitment": record.commitment,
            "players": [{"seat": s.seat_no, "userId": str(s.player_id), "stack": str(s.stack)} for s in seats],
        }
    )
    messages = [start, *event_messages(hand.events[1:], players, table.seq)]
    return Started(record, hand, players, {s.seat_no: s.time_bank_ms for s in seats}, messages)


def refill_time_bank(table: CashTable, seat: Seat) -> None:
    """One more hand played by ``seat``: every ``time_bank_refill_hands`` of them its time bank gains
    ``time_bank_refill_s``, never beyond the table's ``time_bank_s`` (``FINISH_HAND`` does the same in SQL,
    from the table's row as it locks it)."""
    seat.hands_played += 1
    every, gain_s = table.time_bank_refill_hands, table.time_bank_refill_s
    if every > 0 and gain_s > 0 and seat.hands_played % every == 0:
        seat.time_bank_ms = min(table.time_bank_s * 1000, seat.time_bank_ms + gain_s * 1000)


@dataclass(frozen=True, slots=True)
class TableFacts:
    """What ``lobby.hand_completed`` says of its table: set when the table is created and never changed,
    so a runner's copy (read with the table) is as good as the row."""

    table_id: uuid.UUID
    asset: str
    small_blind: int
    big_blind: int
    ante: int
    club_id: uuid.UUID | None
    union_id: uuid.UUID | None

    @classmethod
    def of(cls, table: CashTable) -> TableFacts:
        return cls(table.id, table.asset, table.small_blind, table.big_blind, table.ante, table.club_id, table.union_id)


@dataclass(frozen=True, slots=True)
class HandFacts:
    """What the hand's end says of its ``hands`` row: set when it is dealt and never changed."""

    hand_id: uuid.UUID
    hand_no: int
    commitment: str

    @classmethod
    def of(cls, record: HandRecord) -> HandFacts:
        return cls(record.id, record.hand_no, record.commitment)


@dataclass(frozen=True)
class HandEnd:
    """A finished hand's outcome at table ``seq`` (the seq its last action moves the table to): the
    ``hands`` row's result and rake, each dealt seat's stack after, the event and the message."""

    results: list[PlayerResult]
    rake: int
    result: dict[str, Any]  # the hands row's ``result`` (the event's data ends with it)
    event: dict[str, Any]  # lobby.hand_completed's data
    message: Outgoing  # round-result


def hand_end(table: TableFacts, facts: HandFacts, hand: Hand, players: dict[int, str], seq: int) -> HandEnd:
    """What the hand's end commits, whichever way it is written."""
    results = summarize(hand)
    rake = sum(r.rake for r in results)
    winners = [players[r.seat] for r in results if r.won > 0]
    result: dict[str, Any] = {
        "players": [
            {
                "seat": r.seat,
                "player_id": players[r.seat],
                "stack_before": str(r.stack_before),
                "stack_after": str(r.stack_after),
                "rake": str(r.rake),
                "won": str(r.won),
                "vpip": r.vpip,
                "pfr": r.pfr,
            }
            for r in results
        ],
        "winners": winners,
        "rake": str(rake),
    }
    event = {
        "table_id": str(table.table_id),
        "tournament_id": None,
        # A club (or union) table's, for rakeback; null at a public table (docs/events/club.md).
        "club_id": None if table.club_id is None else str(table.club_id),
        "union_id": None if table.union_id is None else str(table.union_id),
        "hand_id": str(facts.hand_id),
        "hand_history_id": str(facts.hand_id),
        "hand_no": facts.hand_no,
        "seq": seq,
        "asset": table.asset,
        "small_blind": str(table.small_blind),
        "big_blind": str(table.big_blind),
        "ante": str(table.ante),
        **result,
    }
    message = Outgoing(
        {
            "type": "round-result",
            "seq": seq,
            "handId": str(facts.hand_id),
            "results": {players[r.seat]: str(r.stack_after - r.stack_before) for r in results},
            "stacks": {players[r.seat]: str(r.stack_after) for r in results},
            "winners": winners,
            "rake": str(rake),
            "pots": pots_out(hand),
            "commitment": facts.commitment,
        }
    )
    return HandEnd(results, rake, result, event, message)


async def finish_hand(
    session: AsyncSession, table: CashTable, record: HandRecord, hand: Hand, players: dict[int, str]
) -> list[Outgoing]:
    """The hand ended with the action just applied: its result, committed with that action (the caller's
    transaction, the table's row locked, the action's row added and ``table.seq`` moved)."""
    end = hand_end(TableFacts.of(table), HandFacts.of(record), hand, players, table.seq)
    now = datetime.now(UTC)
    record.status = "finished"
    record.rake = end.rake
    record.finished_at = now
    record.deadline = None
    record.state, record.state_actions = hand.to_dict(), record.actions
    record.result = end.result
    by_seat = {r.seat: r for r in end.results}
    for seat in await active_seats(session, table.id):
        result = by_seat.get(seat.seat_no)
        if result is not None and str(seat.player_id) == players[seat.seat_no]:
            seat.stack = result.stack_after
            seat.updated_at = now
            refill_time_bank(table, seat)
    table.current_hand_id = None
    await outbox.add(session, type=HAND_COMPLETED, subject=str(table.id), data=end.event)
    HANDS.labels(str(table.big_blind)).inc()
    return [end.message]


def hand_end_write(
    table: TableFacts,
    facts: HandFacts,
    hand: Hand,
    players: dict[int, str],
    seq: int,
    action: tuple[int, str, int],
) -> tuple[HandEndWrite, HandEnd]:
    """The hand's last ``action`` (seat, action, amount) and its end as one statement's values
    (``FINISH_HAND``): to be written only if the table is still at ``seq`` with this hand, moving it to
    ``seq + 1``. The outbox row is the kit's own (``Outbox.row``): the same columns ``outbox.add`` writes."""
    end = hand_end(table, facts, hand, players, seq + 1)
    _, row = outbox.row(type=HAND_COMPLETED, subject=str(table.table_id), data=end.event)
    seat, name, amount = action
    write = HandEndWrite(
        table_id=table.table_id,
        hand_id=facts.hand_id,
        seq=seq,
        seat=seat,
        player_id=uuid.UUID(players[seat]),
        action=name,
        amount=amount,
        finished_at=datetime.now(UTC),
        rake=end.rake,
        # The ORM's JSONB serialiser is the stdlib's: the same text, the same jsonb.
        state=json.dumps(hand.to_dict()),
        result=json.dumps(end.result),
        stacks=json.dumps(
            [{"seat": r.seat, "player_id": players[r.seat], "stack": str(r.stack_after)} for r in end.results]
        ),
        outbox=row,
    )
    return write, end


def hand_end_committed(table: TableFacts) -> None:
    """After ``FINISH_HAND`` committed: what the ORM's commit would have set off (the outbox's relays woken)."""
    events_committed()
    HANDS.labels(str(table.big_blind)).inc()
