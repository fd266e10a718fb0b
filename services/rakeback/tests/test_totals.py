"""Accrual totals (per period, receiver and paying player): exactly the hands' parts added up, whatever the
batches, their order or a rake taken back out (re-evaluation)."""

from __future__ import annotations

import dataclasses
import random
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tablium_rakeback.domain.periods import period_of
from tablium_rakeback.domain.split import Part, amounts_along, layers, split
from tablium_rakeback.services.accrual import Accrued, Chain, NewRake, Split
from tablium_rakeback.services.totals import TotalKey, totals_of

from tablium_kit.money import MAX_AMOUNT

from .test_split import deal_trees

PLAYERS = [uuid.UUID(int=n + 1) for n in range(3)]
START = datetime(2026, 11, 2, tzinfo=UTC)


@st.composite
def accrued_rakes(draw: st.DrawFn, along_chains: bool = False) -> list[tuple[NewRake, Accrued]]:
    """Rakes of a few players over two weeks, each split along a random deal tree (``along_chains``: some as
    a batch splits them, a :class:`Split` along a chain shared by the rakes of its deal, agent and union)."""
    made: list[tuple[NewRake, Accrued]] = []
    chains: dict[tuple[object, ...], Chain] = {}
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
        if along_chains and draw(st.booleans()):
            key = (deal, agent, union)
            if key not in chains:
                chain = layers(deal, player_id="", agent_id=agent, union_id=union)
                chains[key] = Chain(chain, uuid.UUID(int=2), deal.version)
            made.append((rake, Split(chains[key], amounts_along(rake.rake, chains[key].receivers.kept))))
        else:
            made.append((rake, split(rake.rake, layers(deal, player_id=str(player), agent_id=agent, union_id=union))))
    return made


def _parts(rake: NewRake, accrued: Accrued) -> list[Part]:
    """A split's parts as :func:`split` gives them: its chain's layers, the paying player in the last."""
    if not isinstance(accrued, Split):
        return accrued
    return [
        Part(kind, str(rake.player_id) if kind == "player" else beneficiary, bps, amount)
        for (kind, beneficiary), bps, amount in zip(
            accrued.chain.keys, accrued.chain.receivers.kept, accrued.amounts, strict=True
        )
    ]


def _added(*totals: dict[TotalKey, list[int]]) -> dict[TotalKey, list[int]]:
    result: dict[TotalKey, list[int]] = {}
    for each in totals:
        for key, values in each.items():
            current = result.setdefault(key, [0, 0, 0])
            for i in range(3):
                current[i] += values[i]
    return {key: values for key, values in result.items() if values[0]}


# Drawing deal trees is slow on a busy machine: not a reason to fail.
@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(accrued_rakes(along_chains=True), st.integers(1, 5), st.randoms(use_true_random=False))
def test_totals_are_the_parts_added_up_whatever_the_batches_and_their_order(
    accrued: list[tuple[NewRake, Accrued]], batches: int, rng: random.Random
) -> None:
    """A batch's splits along chains are the rake's split, part for part (their totals are written by
    ``write_splits``, checked against these sums on every database test: conftest's totals check)."""
    expected: dict[TotalKey, list[int]] = {}
    for rake, accrued_parts in accrued:
        parts = _parts(rake, accrued_parts)
        if isinstance(accrued_parts, Split):
            # Along its chain, the split is the rake's split along the chain's layers naming its player.
            named = [
                dataclasses.replace(layer, beneficiary=str(rake.player_id)) if layer.kind == "player" else layer
                for layer in accrued_parts.chain.receivers.layers
            ]
            assert parts == split(rake.rake, named)
        for part in parts:
            key = (rake.period_start, part.kind, part.beneficiary, rake.player_id, rake.asset)
            total = expected.setdefault(key, [0, 0, 0])
            total[0], total[1], total[2] = total[0] + 1, total[1] + rake.rake, total[2] + part.amount
    shuffled = [(rake, _parts(rake, accrued_parts)) for rake, accrued_parts in accrued]
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


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(accrued_rakes(along_chains=True), st.data())
def test_a_rake_taken_back_out_leaves_the_totals_of_the_others(
    accrued: list[tuple[NewRake, Accrued]], data: st.DataObject
) -> None:
    """Re-evaluation subtracts a rake's parts (computed again from its row) from the unpaid totals: what is
    left is what the other rakes alone add up to, and a total with no hand left is gone."""
    if not accrued:
        return
    accrued = [(rake, _parts(rake, accrued_parts)) for rake, accrued_parts in accrued]
    index = data.draw(st.integers(0, len(accrued) - 1))
    taken = totals_of([accrued[index]])
    negative = {key: [-v for v in values] for key, values in taken.items()}
    rest = accrued[:index] + accrued[index + 1 :]
    assert _added(totals_of(accrued), negative) == _added(totals_of(rest))
