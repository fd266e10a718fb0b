"""The split of a rake under random deal trees and 128-bit amounts; tiers; periods."""

from __future__ import annotations

import doctest
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tablium_rakeback.domain import split as split_module
from tablium_rakeback.domain.periods import last_ended, payout_id, period_of
from tablium_rakeback.domain.split import BPS, AgentDeal, Deal, InvalidDeal, layers, split, tier_layers, validate
from tablium_rakeback.domain.tiers import DEFAULT_TIERS, tier_for

from tablium_kit.money import MAX_AMOUNT


@st.composite
def deal_trees(draw: st.DrawFn) -> tuple[Deal, str | None, str | None]:
    """A valid deal (every layer's bps at most its parent's), a member's agent in it or none, a union or none."""
    union_bps = draw(st.none() | st.integers(0, BPS))
    club_bps = draw(st.integers(0, union_bps if union_bps is not None else BPS))
    agents: list[AgentDeal] = []
    for index in range(draw(st.integers(0, 8))):
        parent = draw(st.none() | st.sampled_from(agents)) if agents else None
        ceiling = parent.bps if parent else club_bps
        bps = draw(st.integers(0, ceiling))
        agents.append(AgentDeal(f"a{index}", parent.agent_id if parent else None, bps, draw(st.integers(0, bps))))
    deal = Deal(
        club_id="club",
        union_id="union" if union_bps is not None else None,
        version=1,
        union_bps=union_bps,
        club_bps=club_bps,
        player_bps=draw(st.integers(0, club_bps)),
        agents=tuple(agents),
    )
    agent = draw(st.none() | st.sampled_from([a.agent_id for a in agents])) if agents else None
    union = "union" if union_bps is not None and draw(st.booleans()) else None
    return deal, agent, union


@given(deal_trees(), st.integers(0, MAX_AMOUNT))
def test_parts_sum_to_the_rake_and_no_layer_hands_down_more_than_it_receives(
    tree: tuple[Deal, str | None, str | None], rake: int
) -> None:
    deal, agent, union = tree
    validate(deal)
    chain = layers(deal, player_id="p", agent_id=agent, union_id=union)
    parts = split(rake, chain)
    assert sum(p.amount for p in parts) == rake
    assert all(p.amount >= 0 and p.bps >= 0 for p in parts)
    assert sum(p.bps for p in parts) == BPS
    for part in parts:  # each part is its exact share rounded down or up
        exact_floor = rake * part.bps // BPS
        assert exact_floor <= part.amount <= exact_floor + 1
    for index, layer in enumerate(chain):
        # What flows down to a layer and below is its cumulative share, within the rounding of its parts.
        below = sum(p.amount for p in parts[index:])
        exact = rake * layer.cumulative_bps
        assert exact - (len(parts) - index) * BPS < below * BPS < exact + (len(parts) - index) * BPS
        assert below >= sum(p.amount for p in parts[index + 1 :])  # hands down no more than it receives
    assert next(p.kind for p in parts) == "platform"
    assert parts[-1].kind == "player"


@given(st.integers(0, MAX_AMOUNT), st.integers(0, BPS))
def test_a_tier_gives_back_its_share(rake: int, bps: int) -> None:
    platform, player = split(rake, tier_layers(player_id="p", bps=bps))
    assert platform.amount + player.amount == rake
    assert rake * bps // BPS <= player.amount <= rake * bps // BPS + 1


def test_a_deal_handing_down_more_than_it_receives_is_refused() -> None:
    base = {"club_id": "c", "union_id": None, "version": 1, "union_bps": None}
    with pytest.raises(InvalidDeal):
        validate(Deal(**base, club_bps=1000, player_bps=2000))
    with pytest.raises(InvalidDeal):
        validate(Deal(**{**base, "union_bps": 500}, club_bps=1000, player_bps=0))
    with pytest.raises(InvalidDeal):
        validate(Deal(**base, club_bps=1000, player_bps=0, agents=(AgentDeal("a", None, 1500, 0),)))
    with pytest.raises(InvalidDeal):  # a sub-agent above its parent
        validate(
            Deal(
                **base,
                club_bps=3000,
                player_bps=0,
                agents=(AgentDeal("a", None, 1000, 0), AgentDeal("b", "a", 1200, 0)),
            )
        )
    with pytest.raises(InvalidDeal):
        validate(
            Deal(
                **base, club_bps=3000, player_bps=0, agents=(AgentDeal("a", "b", 1000, 0), AgentDeal("b", "a", 1000, 0))
            )
        )


def test_an_agent_chain_splits_as_the_contract_says() -> None:
    deal = Deal(
        club_id="c",
        union_id="u",
        version=3,
        union_bps=5000,
        club_bps=4000,
        player_bps=1000,
        agents=(AgentDeal("a", None, 3000, 2000), AgentDeal("b", "a", 2500, 1500)),
    )
    parts = split(10_000, layers(deal, player_id="p", agent_id="b", union_id="u"))
    assert [(p.kind, p.beneficiary, p.amount) for p in parts] == [
        ("platform", "platform", 5000),
        ("union", "u", 1000),
        ("club", "c", 1000),
        ("agent", "a", 500),
        ("agent", "b", 1000),
        ("player", "p", 1500),
    ]
    # At the club's own table the union takes nothing: the platform keeps the top.
    assert split(10_000, layers(deal, player_id="p", agent_id=None, union_id=None))[0].amount == 6000


def test_largest_remainder_rounding_goes_to_the_largest_fractions() -> None:
    chain = layers(Deal("c", None, 1, None, 3333, 3333), player_id="p", agent_id=None, union_id=None)
    assert [p.amount for p in split(2, chain)] == [1, 0, 1]  # platform .6667*2=1.33, player .6666
    assert [p.amount for p in split(1, chain)] == [1, 0, 0]


def test_doctests() -> None:
    assert doctest.testmod(split_module).failed == 0


def test_tiers_step_up_by_rolling_rake() -> None:
    usdt = DEFAULT_TIERS["USDT"]
    assert tier_for(0, usdt).name == "bronze"
    assert tier_for(99_999_999, usdt).name == "bronze"
    assert tier_for(100_000_000, usdt).name == "silver"
    assert tier_for(10**12, usdt).name == "platinum"
    assert tier_for(10**12, []).bps == 0


@given(
    st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(9000, 1, 1), timezones=st.just(UTC)),
    st.integers(1, 31),
)
def test_periods_contain_their_moment_and_tile_time(moment: datetime, days: int) -> None:
    period = period_of(moment, timedelta(days=days))
    assert period.start <= moment < period.end
    assert period.end - period.start == timedelta(days=days)
    assert period_of(period.end, timedelta(days=days)).start == period.end
    ended = last_ended(moment, timedelta(days=days))
    assert ended.end <= moment
    assert ended.end == period.start


def test_weeks_start_on_monday_and_payout_ids_are_stable() -> None:
    week = period_of(datetime(2026, 12, 3, 15, tzinfo=UTC), timedelta(days=7))
    assert week.start == datetime(2026, 11, 30, tzinfo=UTC)  # a Monday
    assert payout_id(week.start, "player", "p", "USDT") == payout_id(week.start, "player", "p", "USDT")
    assert payout_id(week.start, "player", "p", "USDT") != payout_id(week.end, "player", "p", "USDT")
