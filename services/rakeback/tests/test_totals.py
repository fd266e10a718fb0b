"""Accrual totals (per period, receiver and paying player): exactly the hands' parts added up, whatever the
batches, their order or a rake taken back out (re-evaluation)."""

from __future__ import annotations

import random
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st
from tablium_rakeback.domain.periods import period_of
from tablium_rakeback.domain.split import Part, layers, split
from tablium_rakeback.services.accrual import NewRake, TotalKey, totals_of

from tablium_kit.money import MAX_AMOUNT

from .test_split import deal_trees

PLAYERS = [uuid.UUID(int=n + 1) for n in range(3)]
START = datetime(2026, 11, 2, tzinfo=UTC)


@st.composite
def accrued_rakes(draw: st.DrawFn) -> list[tuple[NewRake, list[Part]]]:
    """Rakes of a few players over two weeks, each split along a random deal tree."""
    made = []
    for n in range(draw(st.integers(0, 12))):
        deal, agent, union = draw(deal_trees())
        player = draw(st.sampled_from(PLAYERS))
        at = START + timedelta(hours=draw(st.integers(0, 24 * 14 - 1)))
        rake = NewRake(
            hand_id=uuid.UUID(int=n + 100),
            player_id=player,
            table_id=uuid.UUID(int=1),
            club_id=uuid.UUID(int=2),
            union_id=None,
            asset=draw(st.sampled_from(["USDT", "ETH"])),
            rake=draw(st.integers(0, MAX_AMOUNT // 16)),
            hand_time=at,
            period_start=period_of(at, timedelta(days=7)).start,
            status="accrued",
        )
        made.append((rake, split(rake.rake, layers(deal, player_id=str(player), agent_id=agent, union_id=union))))
    return made


def _added(*totals: dict[TotalKey, list[int]]) -> dict[TotalKey, list[int]]:
    result: dict[TotalKey, list[int]] = {}
    for each in totals:
        for key, values in each.items():
            current = result.setdefault(key, [0, 0, 0])
            for i in range(3):
                current[i] += values[i]
    return {key: values for key, values in result.items() if values[0]}


@given(accrued_rakes(), st.integers(1, 5), st.randoms(use_true_random=False))
def test_totals_are_the_parts_added_up_whatever_the_batches_and_their_order(
    accrued: list[tuple[NewRake, list[Part]]], batches: int, rng: random.Random
) -> None:
    expected: dict[TotalKey, list[int]] = {}
    for rake, parts in accrued:
        for part in parts:
            key = (rake.period_start, part.kind, part.beneficiary, rake.player_id, rake.asset)
            total = expected.setdefault(key, [0, 0, 0])
            total[0], total[1], total[2] = total[0] + 1, total[1] + rake.rake, total[2] + part.amount
    shuffled = list(accrued)
    rng.shuffle(shuffled)
    cut = sorted(rng.randrange(len(shuffled) + 1) for _ in range(batches - 1))
    pieces = [shuffled[a:b] for a, b in zip([0, *cut], [*cut, len(shuffled)], strict=True)]
    assert _added(*(totals_of(piece) for piece in pieces)) == expected
    # Every unit of every rake is in some receiver's total (the platform's included), per asset.
    paid_in: Counter[str] = Counter()
    by_asset: Counter[str] = Counter()
    for rake, _ in accrued:
        paid_in[rake.asset] += rake.rake
    for (_, _, _, _, asset), (_, _, amount) in expected.items():
        by_asset[asset] += amount
    assert +by_asset == +paid_in


@given(accrued_rakes(), st.data())
def test_a_rake_taken_back_out_leaves_the_totals_of_the_others(
    accrued: list[tuple[NewRake, list[Part]]], data: st.DataObject
) -> None:
    """Re-evaluation subtracts a rake's parts (computed again from its row) from the unpaid totals: what is
    left is what the other rakes alone add up to, and a total with no hand left is gone."""
    if not accrued:
        return
    index = data.draw(st.integers(0, len(accrued) - 1))
    taken = totals_of([accrued[index]])
    negative = {key: [-v for v in values] for key, values in taken.items()}
    rest = accrued[:index] + accrued[index + 1 :]
    assert _added(totals_of(accrued), negative) == _added(totals_of(rest))
