"""Money and chips on the wire: decimal strings (the platform's rule, ADR 0007), ints everywhere else.

The engine, the journal and the database count in Python ints. What leaves the service as JSON (the
REST views, the events) carries every amount of money or chips as a decimal string, so a JavaScript
client never rounds one past 2^53. Typed responses use the kit's ``Amount`` fields; the engine's
views (tables, standings, clock, deal offers, the stored configuration, instructions) are plain dicts,
and :func:`to_wire` rewrites them by key.
"""

from __future__ import annotations

from typing import Any

from tablium_kit.money import format_amount

# Keys whose int values are money (in the asset's minor unit) or chips, wherever they appear.
MONEY_AND_CHIPS = frozenset(
    {
        # money
        "buy_in",
        "fee",
        "bounty",
        "guarantee",
        "satellite_seat_value",
        "prize_pool",
        "payouts",
        "prize",
        "amount",
        # chips
        "starting_stack",
        "rebuy_chips",
        "addon_chips",
        "small_blind",
        "big_blind",
        "ante",
        "stack",
    }
)


def _strings(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        return format_amount(value)
    if isinstance(value, list | tuple):
        return [_strings(item) for item in value]
    return value


# Decision log rows carry their facts by position: the kinds with chips among them, and where.
_CHIPS_IN_DECISIONS = {"undo-bust": 4}


def decision_to_wire(decision: dict[str, Any]) -> dict[str, Any]:
    """A decision log row (``engine.describe``) with its chips, if it has any, as a decimal string."""
    index = _CHIPS_IN_DECISIONS.get(decision["kind"])
    if index is None:
        return decision
    data = list(decision["data"])
    data[index] = format_amount(data[index])
    return {**decision, "data": data}


def to_wire(value: Any) -> Any:
    """``value`` (dicts and lists, nested) with every amount of money or chips as a decimal string."""
    if isinstance(value, dict):
        return {key: _strings(item) if key in MONEY_AND_CHIPS else to_wire(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [to_wire(item) for item in value]
    return value
