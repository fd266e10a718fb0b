"""The decision log: compact rows, rendered with their reason when the director reads them.

Rows are ``[seq, hands played, kind, *numbers]``; the reason is rendered from a template when read, so a
250,000-entrant event keeps a compact log (~300k rows).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

REASONS: dict[str, str] = {
    "balance": "table {1} had {5} and table {3} had {6} players (tolerance {7}): entry {0}, due the big blind "
    "next at the long table [11A] and moved {8} time(s) before, goes from seat {2} to seat {4}, the next big "
    "blind at the short table",
    "broken": "table {1} broken: entry {0} drew seat {4} at table {3}, a shortest table [10B]",
    "redirect": "entry {0}, still at table {1}, goes to table {3} seat {4} instead: its first destination is "
    "long now or breaking",
    "reseat": "entry {0} takes seat {2} at table {1}, not seat {3}: table {1} dealt since the move was planned, "
    "and seat {2} is the next big blind now [11A]",
    "redraw": "entry {0}, the big blind of a broken table, draws seat {2} at table {1}, not seat {3}: table {1} "
    "dealt since the draw, and seat {3} posts the big blind next [32]",
    "undo-move": "director undid the move of entry {0}: back to table {3} seat {4} after the current hand",
    "move-cancelled": "entry {0} busted at table {1} before moving to table {2}",
    "move-withdrawn": "entry {0} stays at table {1}: the seat reserved at table {2} is needed sooner",
    "break-table": "{1} players fit in {2} tables: table {0} breaks (break order: {3})",
    "balance-blocked": "every candidate at the longest tables is locked or already moving",
    "eliminate": "entry {0} eliminated at table {1}: place {2}" + "{3}",
    "h4h-bust": "entry {0} busted in a hand-for-hand hand at table {1}; placed when every table has played it",
    "break-due": "break due after level {0}: every table finishes its hand and waits",
    "break-start": "every table is waiting: break of {0}s",
    "colour-up": "colour-up: the {0} chips leave play, odd chips raced for chips of {1} [24, 25B]",
    "pause": "director paused the tournament",
    "resume": "director resumed the tournament",
    "lock": "director set the seat lock of entry {0} to {1}",
    "tolerance": "director set the balancing tolerance to {0}",
    "undo-bust": "director undid the bust-out of entry {0}: table {1} seat {2}, {4} chips back from entry {3}",
    "undo-bust-pending": "director undid the bust-out of entry {0}: done when table {1} finishes its hand",
    "tie-ordered": "director ordered the tie of entries {0} (best first) over places {1}-{2} (0: placed when "
    "registration closes)",
    "undo-dropped": "the undo of the bust-out of entry {0} was dropped: {1}",
    "registration": "registration closed with {0} entries",
    "h4h-on": "{0} players left and {1} paid: hand-for-hand",
    "h4h-off": "hand-for-hand over: {0} players left",
    "finish": "tournament finished",
}


def describe(row: Sequence[Any]) -> dict[str, Any]:
    """A decision log row as the director reads it."""
    seq, hands, kind, *data = row
    text = REASONS.get(kind, kind).format(*data, *[""] * 10)
    return {"seq": seq, "hands": hands, "kind": kind, "reason": text, "data": data}
