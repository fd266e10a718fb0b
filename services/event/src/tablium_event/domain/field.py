"""The field: entries and tables, the records every concern of the engine reads and writes.

An ``Entry`` is one buy-in (a re-entry is a new one); a ``Table`` is a seat array with its planned
moves: ``reserved`` seats for players on their way in, ``outgoing`` players leaving after the current
hand. "Effective" players (``n - outgoing + reserved``) are what the table will have once planned moves
happen; balancing works on them. Both serialise to compact JSON rows (``dump``/``load``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

Key = tuple[int, int, int]  # (effective players, seeded rank, table id)
# (effective players, -moves of its candidate, -players before the candidate in big-blind order, seeded rank, table id)
MoverKey = tuple[int, int, int, int, int]

WAITING = "waiting for players"
SHORT = "3 short: waiting for players [11D]"


class Entry:
    """One entry (a re-entry is a new one): its seat, stack, moves and finish."""

    __slots__ = (
        "addon",
        "bounty",
        "busted",
        "fresh",
        "hand_start",
        "id",
        "locked",
        "moves",
        "number",
        "place",
        "place_to",
        "player",
        "prize",
        "seat",
        "stack",
        "table",
        "waiting",
    )

    def __init__(self, entry_id: int, player: str, number: int, stack: int, bounty: int) -> None:
        self.id = entry_id
        self.player = player
        self.number = number
        self.stack = stack
        self.hand_start = stack
        self.table = 0
        self.seat = -1
        self.moves = 0
        self.busted = False
        self.locked = False
        self.place = 0
        self.place_to = 0
        self.prize = 0
        self.bounty = bounty
        self.addon = False
        # Seated at a table since its last deal; and not dealt in yet: seated between the small blind and
        # the button, waiting for the button to pass (TOURNAMENT.md "Seating"). See ``Seating.deal``.
        self.fresh = False
        self.waiting = False

    FIELDS = (
        "id",
        "player",
        "number",
        "stack",
        "hand_start",
        "table",
        "seat",
        "moves",
        "busted",
        "locked",
        "place",
        "place_to",
        "prize",
        "bounty",
        "addon",
        "fresh",
        "waiting",
    )

    def dump(self) -> list[Any]:
        return [getattr(self, name) for name in self.FIELDS]

    @classmethod
    def load(cls, row: Sequence[Any]) -> Entry:
        entry = cls.__new__(cls)
        entry.fresh = entry.waiting = False  # a state saved before these two were kept has neither
        for name, value in zip(cls.FIELDS, row, strict=False):
            setattr(entry, name, value)
        return entry


class Table:
    __slots__ = (
        "bb",
        "breaking",
        "button",
        "held",
        "id",
        "in_hand",
        "mover",
        "n",
        "outgoing",
        "rank",
        "reserved",
        "sb",
        "seats",
    )

    def __init__(self, table_id: int, seats: int, rank: int) -> None:
        self.id = table_id
        self.seats: list[int | None] = [None] * seats
        self.n = 0
        self.rank = rank
        self.reserved: dict[int, int] = {}  # seat -> incoming entry
        self.outgoing: dict[int, tuple[int, int]] = {}  # entry -> (table, seat) after the current hand
        self.bb = -1
        self.sb = -1
        self.button = -1
        self.in_hand = False
        self.held: str | None = None
        self.breaking = False
        self.mover: MoverKey | None = None  # this table's entry in Tournament.movers (derived, not stored)

    @property
    def effective(self) -> int:
        return self.n - len(self.outgoing) + len(self.reserved)

    def key(self) -> Key:
        return (self.n - len(self.outgoing) + len(self.reserved), self.rank, self.id)

    def next_occupied(self, seat: int) -> int:
        size = len(self.seats)
        for step in range(1, size + 1):
            candidate = (seat + step) % size
            if self.seats[candidate] is not None:
                return candidate
        return -1

    def free_seats(self) -> list[int]:
        return [s for s, entry in enumerate(self.seats) if entry is None and s not in self.reserved]

    def dump(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "seats": self.seats,
            "rank": self.rank,
            "reserved": [[seat, entry] for seat, entry in self.reserved.items()],
            "outgoing": [[entry, to[0], to[1]] for entry, to in self.outgoing.items()],
            "bb": self.bb,
            "sb": self.sb,
            "button": self.button,
            "in_hand": self.in_hand,
            "held": self.held,
            "breaking": self.breaking,
        }

    @classmethod
    def load(cls, data: Mapping[str, Any]) -> Table:
        table = cls(data["id"], len(data["seats"]), data["rank"])
        table.seats = list(data["seats"])
        table.n = sum(1 for entry in table.seats if entry is not None)
        table.reserved = dict(data["reserved"])
        table.outgoing = {entry: (to_table, to_seat) for entry, to_table, to_seat in data["outgoing"]}
        table.bb, table.sb, table.button = data["bb"], data["sb"], data["button"]
        table.in_hand, table.held, table.breaking = data["in_hand"], data["held"], data["breaking"]
        return table
