"""Amounts: unsigned 128-bit integers in an asset's minor unit, the one way every service carries them.

ETH counts in wei (10^18 a coin) and the ledger's counters only grow, so 64 bits are not enough;
128 bits are TigerBeetle's width. Chips are counted the same way. See ADR 0007.

- **JSON** (API bodies, event payloads): a decimal string of canonical digits, ``"1000"``. A JSON
  number would lose precision in any JavaScript client past 2^53 (and in any decoder that reads
  numbers as doubles). Fields are typed :data:`Amount` (0 allowed), :data:`PositiveAmount` (a transfer's
  amount) or :data:`SignedAmount` (derived figures that may be negative: a clearing account's
  balance). The pattern refuses ``1e3``, ``5.0``, ``" 5"``, ``"+5"``, ``"05"`` and ``"5\\n"`` while
  decoding; :func:`parse_amount` turns the string into the ``int`` domain code uses and refuses
  anything past 2^128-1 (a regular expression can't say that readably); :func:`format_amount` turns
  it back. The structs keep the string so that what is decoded is exactly what is on the wire, and
  a type checker catches an ``int`` handed to a field the wire shows as a string::

      class BuyIn(msgspec.Struct):
          amount: PositiveAmount

      value = parse_amount(body.amount)          # int; 422 past 2^128-1
      return BuyInOut(amount=format_amount(value))

- **Postgres**: ``NUMERIC(39,0)`` through :class:`AmountType` (Python ``int`` in and out, exactly),
  with :func:`amount_checks` in the model and :func:`amount_range` in migrations keeping every
  value within 0..2^128-1 (``NUMERIC(39,0)`` alone would take up to 10^39-1).
"""

from __future__ import annotations

import re
from typing import Annotated, Any

import msgspec
from sqlalchemy import CheckConstraint, Numeric
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from tablium_kit.errors import InvalidInput
from tablium_kit.inputs import exact

MAX_AMOUNT = 2**128 - 1
# 39 digits is the width of 2^128-1; ``exact`` refuses the final newline Python's ``$`` lets through
# (msgspec matches with ``re.search``) and stays ECMA-262 for clients reading the OpenAPI.
AMOUNT_PATTERN = exact("0|[1-9][0-9]{0,38}")
POSITIVE_AMOUNT_PATTERN = exact("[1-9][0-9]{0,38}")
SIGNED_AMOUNT_PATTERN = exact("0|-?[1-9][0-9]{0,38}")

_EXAMPLE = "1000000000000000000000000"  # 10^6 ETH in wei: past 2^64, well within 2^128

Amount = Annotated[
    str,
    msgspec.Meta(
        pattern=AMOUNT_PATTERN,
        description="An amount in the asset's minor unit (or chips): an integer 0..2^128-1 as a decimal string.",
        examples=["0", _EXAMPLE],
    ),
]
PositiveAmount = Annotated[
    str,
    msgspec.Meta(
        pattern=POSITIVE_AMOUNT_PATTERN,
        description="An amount in the asset's minor unit (or chips): an integer 1..2^128-1 as a decimal string.",
        examples=[_EXAMPLE],
    ),
]
SignedAmount = Annotated[
    str,
    msgspec.Meta(
        pattern=SIGNED_AMOUNT_PATTERN,
        description=(
            "A derived figure in the asset's minor unit that may be negative (a house or clearing account's "
            "balance): an integer -(2^128-1)..2^128-1 as a decimal string."
        ),
        examples=["-" + _EXAMPLE, _EXAMPLE],
    ),
]


def _members(pattern: str, where: str) -> msgspec.Meta:
    return msgspec.Meta(extra_json_schema={"extra": {where: {"type": "string", "pattern": pattern}}})


# Litestar's OpenAPI shows a list's or a dict's members without their constraints (msgspec still enforces
# them); annotating the container with one of these puts the pattern back in the document:
# ``Annotated[list[Amount], AMOUNT_ITEMS]``, ``Annotated[dict[str, PositiveAmount], POSITIVE_AMOUNT_VALUES]``.
AMOUNT_ITEMS = _members(AMOUNT_PATTERN, "items")
AMOUNT_VALUES = _members(AMOUNT_PATTERN, "additionalProperties")
POSITIVE_AMOUNT_VALUES = _members(POSITIVE_AMOUNT_PATTERN, "additionalProperties")

_AMOUNT = re.compile(AMOUNT_PATTERN)


class AmountOutOfRange(InvalidInput):
    slug = "amount-out-of-range"


def parse_amount(text: str) -> int:
    """The ``int`` a wire amount stands for.

    Checks the pattern again (the string may come from somewhere no struct decoded, and ``int()``
    alone would take ``" 5"`` or ``"1_000"``) and refuses values past 2^128-1, with a 422 problem.
    """
    if _AMOUNT.search(text) is None:
        raise AmountOutOfRange(f"an amount is a decimal string of digits 0..{MAX_AMOUNT}, not {text[:48]!r}")
    value = int(text)
    if value > MAX_AMOUNT:
        raise AmountOutOfRange(f"an amount must not exceed 2^128-1 ({MAX_AMOUNT})")
    return value


def format_amount(value: int) -> str:
    """The wire form of an amount (or a signed figure derived from amounts)."""
    if not -MAX_AMOUNT <= value <= MAX_AMOUNT:
        # Counters are checked before they are written: reaching this is a bug, not bad input.
        raise ValueError(f"{value} is outside the 128-bit amount range")
    return str(value)


class AmountType(TypeDecorator[int]):
    """``NUMERIC(39,0)``: an :data:`Amount` column, Python ``int`` in and out, exactly.

    ``Numeric`` alone would hand back ``Decimal`` (or, with ``asdecimal=False``, a lossy float).
    Pair every column with :func:`amount_checks`.
    """

    impl = Numeric(39, 0)
    cache_ok = True

    def process_bind_param(self, value: int | None, dialect: Dialect) -> int | None:
        return value  # asyncpg encodes a Python int as numeric exactly

    def process_result_value(self, value: Any, dialect: Dialect) -> int | None:
        return None if value is None else int(value)


def amount_range(column: str) -> str:
    """SQL that holds when ``column`` lies in 0..2^128-1 (or is NULL, as for any CHECK)."""
    return f"{column} >= 0 AND {column} <= {MAX_AMOUNT}"


def amount_checks(*columns: str) -> tuple[CheckConstraint, ...]:
    """One CHECK per column, named ``<column>_u128`` (``ck_<table>_<column>_u128`` under the kit's naming
    convention; a migration creates the same with ``op.create_check_constraint``)."""
    return tuple(CheckConstraint(amount_range(column), name=f"{column}_u128") for column in columns)
