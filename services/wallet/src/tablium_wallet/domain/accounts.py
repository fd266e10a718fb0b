"""Who owns an account, of what kind, and the flags its kind carries."""

from __future__ import annotations

import re
from enum import IntFlag

from tablium_kit.errors import InvalidInput


class AccountFlags(IntFlag):
    """TigerBeetle's account flags: balance constraints the ledger enforces on every transfer."""

    DEBITS_MUST_NOT_EXCEED_CREDITS = 1
    CREDITS_MUST_NOT_EXCEED_DEBITS = 2


def flag_names(flags: int) -> list[str]:
    return [flag.name.lower() for flag in AccountFlags if flags & flag and flag.name]


# Owner pattern -> the kinds of account it may hold.
_OWNERS: list[tuple[re.Pattern[str], frozenset[str]]] = [
    (
        re.compile(r"^player:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z"),
        frozenset({"player"}),
    ),
    (re.compile(r"^table:[A-Za-z0-9_.:-]{1,64}\Z"), frozenset({"table_escrow"})),
    (re.compile(r"^tournament:[A-Za-z0-9_.:-]{1,64}\Z"), frozenset({"prize_pool"})),
    (re.compile(r"^house\Z"), frozenset({"house_rake", "house_fees", "house_adjustments"})),
    (re.compile(r"^rakeback\Z"), frozenset({"rakeback_pool"})),
    # Clubs' and unions' rakeback shares (rakeback.payout_requested), for the club service to hand on.
    (re.compile(r"^club:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z"), frozenset({"club"})),
    (re.compile(r"^union:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z"), frozenset({"union"})),
    (re.compile(r"^chain:[0-9]{1,20}\Z"), frozenset({"chain_clearing"})),
]

KINDS = frozenset(kind for _, kinds in _OWNERS for kind in kinds)
# Where players stake: a cash table's escrow, a tournament's prize pool (loss limits count these).
STAKE_KINDS = frozenset({"table_escrow", "prize_pool"})

# Players, escrows, prize pools, clubs and unions hold real money: they never pay out more than they received.
# House, rakeback and chain clearing accounts are the platform's side and may run negative.
_KIND_FLAGS = {
    "player": AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS,
    "table_escrow": AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS,
    "prize_pool": AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS,
    "club": AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS,
    "union": AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS,
}


def check_owner(owner: str, kind: str) -> AccountFlags:
    """Validate an (owner, kind) pair; returns the flags such an account carries."""
    for pattern, kinds in _OWNERS:
        if pattern.match(owner):
            if kind not in kinds:
                raise InvalidInput(f"an account of {owner!r} must be of kind {' or '.join(sorted(kinds))}")
            return _KIND_FLAGS.get(kind, AccountFlags(0))
    raise InvalidInput(
        f"unknown owner {owner!r}: expected player:<uuid>, table:<id>, tournament:<id>, house, rakeback, "
        "club:<uuid>, union:<uuid> or chain:<id>"
    )


def player_owner(player_id: object) -> str:
    return f"player:{player_id}"
