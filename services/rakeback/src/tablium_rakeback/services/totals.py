"""The unpaid accrual totals (per payout period, receiver and paying player, ``accrual_totals``): a batch's
parts added up in Python and upserted in one statement, a rake's parts taken back out (ADR 0011).

Every writer holds the accrual lock (:mod:`tablium_rakeback.services.accrual`); within it, concurrent
batches take the totals' row locks in one order (receiver kind, receiver, paying player, period, asset).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from tablium_rakeback.domain.split import Part

if TYPE_CHECKING:
    from tablium_rakeback.services.accrual import AnyRake, Chain, Split


async def driver(session: AsyncSession) -> Any:
    """The session's asyncpg connection, in its transaction: for COPY and array-bound inserts of a batch's
    thousands of rows (SQLAlchemy's multi-row inserts cost more Python than Postgres spends storing them)."""
    connection = await session.connection()
    return (await connection.get_raw_connection()).driver_connection


_ADD_TOTALS = """
    INSERT INTO accrual_totals AS t (period_start, kind, beneficiary, player_id, asset, hands, rake, amount)
    SELECT * FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::uuid[], $5::text[], $6::bigint[],
                         $7::text[]::numeric[], $8::text[]::numeric[])
    ON CONFLICT (kind, beneficiary, period_start, player_id, asset, payout_id)
    DO UPDATE SET hands = t.hands + excluded.hands, rake = t.rake + excluded.rake, amount = t.amount + excluded.amount
"""

TotalKey = tuple[datetime, str, str, uuid.UUID, str]  # period, receiver kind, receiver, paying player, asset


def totals_of(accrued: Sequence[tuple[AnyRake, list[Part]]], hands: int = 1) -> dict[TotalKey, list[int]]:
    """What the parts add to each unpaid total: hands (``hands`` per rake the receiver has a part of, zero
    or not: 0 for a refunded fee's reversal, which is no hand), the rake they came from and the parts.
    Pure: the sums are exact integers. (A batch's club rakes go through :func:`write_splits` instead.)"""
    # Per paying player first (one key per rake), then per receiver: fewer tuples built and UUIDs hashed.
    by_payer: dict[tuple[datetime, uuid.UUID, str], dict[tuple[str, str], list[int]]] = {}
    for rake, parts in accrued:
        payer_key = (rake.period_start, rake.player_id, rake.asset)
        payer = by_payer.get(payer_key)
        if payer is None:
            payer = by_payer[payer_key] = {}
        amount = rake.rake
        for p in parts:
            total = payer.get(p[:2])
            if total is None:
                payer[p[:2]] = [hands, amount, p.amount]
            else:
                total[0] += hands
                total[1] += amount
                total[2] += p.amount
    return {
        (period, kind, beneficiary, player, asset): total
        for (period, player, asset), payer in by_payer.items()
        for (kind, beneficiary), total in payer.items()
    }


async def write_parts(session: AsyncSession, accrued: Sequence[tuple[AnyRake, list[Part]]], hands: int = 1) -> None:
    """Every part added to its unpaid total, in one upsert (keys sorted: concurrent batches adding to the
    same totals take their row locks in one order)."""
    totals = totals_of(accrued, hands)
    if not totals:
        return
    # Any one order will do, as long as every batch takes it: receiver, paying player (its int: UUIDs compare
    # in Python), period, asset.
    keys = sorted(totals, key=lambda k: (k[1], k[2], k[3].int, k[0], k[4]))
    columns: list[list[Any]] = [[k[i] for k in keys] for i in range(5)]
    columns.append([totals[k][0] for k in keys])
    # Amounts as text: asyncpg's binary numeric encoding of an int costs several times more.
    columns += [[str(totals[k][i]) for k in keys] for i in (1, 2)]
    await (await driver(session)).execute(_ADD_TOTALS, *columns)


# A batch's splits, added up per paying player and chain in Python, fanned out to their receivers by
# Postgres: one row per (period, paying player, asset, chain) with its amounts layer by layer (text, comma
# separated), joined to its chain's layers; the same keys and sums as ``totals_of``, in the same lock order
# as ``write_parts`` (receiver kind, receiver, paying player, period, asset; "C" text order, as Python's).
_ADD_SPLIT_TOTALS = """
    INSERT INTO accrual_totals AS t (period_start, kind, beneficiary, player_id, asset, hands, rake, amount)
    SELECT * FROM (
        SELECT r.period_start, l.kind, CASE WHEN l.kind = 'player' THEN r.player_id::text ELSE l.beneficiary END,
               r.player_id, r.asset, sum(r.hands), sum(r.rake::numeric),
               sum((string_to_array(r.amounts, ',')::numeric[])[l.position])
        FROM unnest($1::timestamptz[], $2::uuid[], $3::text[], $4::int[], $5::bigint[], $6::text[], $7::text[])
             AS r(period_start, player_id, asset, chain, hands, rake, amounts)
        JOIN unnest($8::int[], $9::int[], $10::text[], $11::text[]) AS l(chain, position, kind, beneficiary)
          ON l.chain = r.chain
        GROUP BY 1, 2, 3, 4, 5
    ) AS s(period_start, kind, beneficiary, player_id, asset, hands, rake, amount)
    ORDER BY kind COLLATE "C", beneficiary COLLATE "C", player_id, period_start, asset COLLATE "C"
    ON CONFLICT (kind, beneficiary, period_start, player_id, asset, payout_id)
    DO UPDATE SET hands = t.hands + excluded.hands, rake = t.rake + excluded.rake, amount = t.amount + excluded.amount
"""


async def write_splits(session: AsyncSession, accrued: Sequence[tuple[AnyRake, Split]]) -> None:
    """A batch's splits added to their unpaid totals in one statement: added up per paying player and
    chain here (a handful of integers a rake), each such sum given to its chain's receivers by Postgres."""
    sums: dict[tuple[datetime, uuid.UUID, str, int], list[Any]] = {}
    chains: dict[int, tuple[int, Chain]] = {}
    for rake, (chain, amounts) in accrued:
        known = chains.get(id(chain))
        if known is None:
            known = chains[id(chain)] = (len(chains), chain)
        key = (rake.period_start, rake.player_id, rake.asset, known[0])
        total = sums.get(key)
        if total is None:
            sums[key] = [1, rake.rake, list(amounts)]
        else:
            total[0] += 1
            total[1] += rake.rake
            total[2] = [a + b for a, b in zip(total[2], amounts, strict=True)]
    if not sums:
        return
    keys = list(sums)
    layer_columns: list[list[Any]] = [[], [], [], []]
    for index, chain in chains.values():
        for position, (kind, beneficiary) in enumerate(chain.keys, start=1):
            for column, value in zip(layer_columns, (index, position, kind, beneficiary), strict=True):
                column.append(value)
    await (await driver(session)).execute(
        _ADD_SPLIT_TOTALS,
        [k[0] for k in keys],
        [k[1] for k in keys],
        [k[2] for k in keys],
        [k[3] for k in keys],
        [sums[k][0] for k in keys],
        [str(sums[k][1]) for k in keys],
        [",".join(map(str, sums[k][2])) for k in keys],
        *layer_columns,
    )


async def take_back(session: AsyncSession, rake: AnyRake, parts: list[Part]) -> None:
    """Remove an unpaid rake's parts from its totals (a re-evaluation replaces them, a refund removes them);
    a total left with nothing in it is deleted, as if that rake had never accrued (one left with no hand
    but a paid fee's reversal stays)."""
    for (period, kind, beneficiary, player, asset), (hands, rake_sum, amount) in sorted(
        totals_of([(rake, parts)]).items()
    ):
        key = {"period": period, "kind": kind, "beneficiary": beneficiary, "player": player, "asset": asset}
        await session.execute(
            text(
                "UPDATE accrual_totals SET hands = hands - :hands, rake = rake - :rake, amount = amount - :amount "
                "WHERE period_start = :period AND kind = :kind AND beneficiary = :beneficiary "
                "AND player_id = :player AND asset = :asset AND payout_id IS NULL"
            ),
            {**key, "hands": hands, "rake": rake_sum, "amount": amount},
        )
        await session.execute(
            text(
                "DELETE FROM accrual_totals WHERE period_start = :period AND kind = :kind "
                "AND beneficiary = :beneficiary AND player_id = :player AND asset = :asset "
                "AND payout_id IS NULL AND hands = 0 AND rake = 0 AND amount = 0"
            ),
            key,
        )
