"""What the engine tells the world to do. Each is plain data with ``to_dict`` (JSON-able)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, ClassVar


@dataclass(frozen=True, slots=True)
class Instruction:
    kind: ClassVar[str] = "instruction"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **asdict(self)}


@dataclass(frozen=True, slots=True)
class OpenTable(Instruction):
    kind: ClassVar[str] = "open_table"
    table: int


@dataclass(frozen=True, slots=True)
class SeatPlayer(Instruction):
    kind: ClassVar[str] = "seat_player"
    entry: int
    player: str
    table: int
    seat: int
    stack: int
    reason: str


@dataclass(frozen=True, slots=True)
class MovePlayer(Instruction):
    """Issued only when the source table is between hands: the player leaves now."""

    kind: ClassVar[str] = "move_player"
    entry: int
    player: str
    from_table: int
    from_seat: int
    to_table: int
    to_seat: int
    reason: str


@dataclass(frozen=True, slots=True)
class BreakTable(Instruction):
    kind: ClassVar[str] = "break_table"
    table: int


@dataclass(frozen=True, slots=True)
class HoldTable(Instruction):
    """The table finished its hand and must not deal the next one yet (break, hand-for-hand, 3 short)."""

    kind: ClassVar[str] = "hold_table"
    table: int
    reason: str


@dataclass(frozen=True, slots=True)
class ResumeTable(Instruction):
    kind: ClassVar[str] = "resume_table"
    table: int


@dataclass(frozen=True, slots=True)
class NewLevel(Instruction):
    """Applies from the next hand dealt [23]."""

    kind: ClassVar[str] = "new_level"
    level: int
    small_blind: int
    big_blind: int
    ante: int
    big_blind_ante: bool
    duration_s: int


@dataclass(frozen=True, slots=True)
class StartBreak(Instruction):
    kind: ClassVar[str] = "start_break"
    after_level: int
    duration_s: int


@dataclass(frozen=True, slots=True)
class EndBreak(Instruction):
    kind: ClassVar[str] = "end_break"


@dataclass(frozen=True, slots=True)
class HandForHand(Instruction):
    kind: ClassVar[str] = "hand_for_hand"
    on: bool


@dataclass(frozen=True, slots=True)
class EliminatePlayer(Instruction):
    """``place`` is the best place of the range the player covers (a tie covers several)."""

    kind: ClassVar[str] = "eliminate_player"
    entry: int
    player: str
    table: int
    place: int
    place_to: int
    reason: str


@dataclass(frozen=True, slots=True)
class EliminationUndone(Instruction):
    """A director undid the bust-out of ``entry``: it is back in play; ``place``..``place_to`` is the
    place it had been given (0 while the bust-out was still waiting for its place)."""

    kind: ClassVar[str] = "elimination_undone"
    entry: int
    player: str
    table: int
    place: int
    place_to: int


@dataclass(frozen=True, slots=True)
class TieOrdered(Instruction):
    """A director ordered the tie over ``place``..``place_to``: ``entries`` best place first. Each entry's
    corrected place follows (``EliminatePlayer``), then its prize (``AwardPrize``): these replace the tie's
    shared places and prizes announced before."""

    kind: ClassVar[str] = "tie_ordered"
    entries: tuple[int, ...]
    place: int
    place_to: int


@dataclass(frozen=True, slots=True)
class AwardPrize(Instruction):
    kind: ClassVar[str] = "award_prize"
    entry: int
    player: str
    place: int
    amount: int
    prize: str  # "place" | "bounty"


@dataclass(frozen=True, slots=True)
class SetStack(Instruction):
    kind: ClassVar[str] = "set_stack"
    entry: int
    table: int
    seat: int
    stack: int
    reason: str


@dataclass(frozen=True, slots=True)
class TournamentStarted(Instruction):
    kind: ClassVar[str] = "tournament_started"
    entries: int
    tables: int


@dataclass(frozen=True, slots=True)
class TournamentFinished(Instruction):
    kind: ClassVar[str] = "tournament_finished"
    winners: tuple[int, ...]
