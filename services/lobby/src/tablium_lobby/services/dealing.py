"""A hand's start and end, written in the caller's transaction (the table's row locked).

Start: the seats that can play, the button, a fresh seed and its commitment, the ``hands`` row and the
``hand-start`` message. End: the result, the seats' stacks, the time bank refill, ``lobby.hand_completed``
in the outbox and the ``round-result`` message.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncSession

from tablium_lobby.db.models import CashTable, HandRecord, Seat
from tablium_lobby.domain.protocol import Outgoing, event_messages, pots_out
from tablium_lobby.domain.summary import summarize
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
    ``time_bank_refill_s``, never beyond the table's ``time_bank_s``."""
    seat.hands_played += 1
    every, gain_s = table.time_bank_refill_hands, table.time_bank_refill_s
    if every > 0 and gain_s > 0 and seat.hands_played % every == 0:
        seat.time_bank_ms = min(table.time_bank_s * 1000, seat.time_bank_ms + gain_s * 1000)


async def finish_hand(
    session: AsyncSession, table: CashTable, record: HandRecord, hand: Hand, players: dict[int, str]
) -> list[Outgoing]:
    """The hand ended with the action just applied: its result, committed with that action."""
    results = summarize(hand)
    rake = sum(r.rake for r in results)
    now = datetime.now(UTC)
    record.status = "finished"
    record.rake = rake
    record.finished_at = now
    record.deadline = None
    record.state, record.state_actions = hand.to_dict(), record.actions
    winners = [players[r.seat] for r in results if r.won > 0]
    record.result = {
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
    by_seat = {r.seat: r for r in results}
    for seat in await active_seats(session, table.id):
        result = by_seat.get(seat.seat_no)
        if result is not None and str(seat.player_id) == players[seat.seat_no]:
            seat.stack = result.stack_after
            seat.updated_at = now
            refill_time_bank(table, seat)
    table.current_hand_id = None
    await outbox.add(
        session,
        type=HAND_COMPLETED,
        subject=str(table.id),
        data={
            "table_id": str(table.id),
            "tournament_id": None,
            # A club (or union) table's, for rakeback; null at a public table (docs/events/club.md).
            "club_id": None if table.club_id is None else str(table.club_id),
            "union_id": None if table.union_id is None else str(table.union_id),
            "hand_id": str(record.id),
            "hand_history_id": str(record.id),
            "hand_no": record.hand_no,
            "seq": table.seq,
            "asset": table.asset,
            "small_blind": str(table.small_blind),
            "big_blind": str(table.big_blind),
            "ante": str(table.ante),
            **record.result,
        },
    )
    HANDS.labels(str(table.big_blind)).inc()
    return [
        Outgoing(
            {
                "type": "round-result",
                "seq": table.seq,
                "handId": str(record.id),
                "results": {players[r.seat]: str(r.stack_after - r.stack_before) for r in results},
                "stacks": {players[r.seat]: str(r.stack_after) for r in results},
                "winners": winners,
                "rake": str(rake),
                "pots": pots_out(hand),
                "commitment": record.commitment,
            }
        )
    ]
