"""Deal validation over random agent trees and shares (hypothesis): a deal is accepted exactly when no layer
hands down more than it receives, and every accepted deal names each agent's parent from the tree."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st
from tablium_club.domain.deals import MAX_BPS, AgentShare, DealTerms, validate

from tablium_kit.errors import InvalidInput

bps = st.integers(min_value=0, max_value=MAX_BPS)
Tree = dict[uuid.UUID, uuid.UUID | None]


@st.composite
def deals(draw: st.DrawFn) -> tuple[DealTerms, Tree]:
    agents = [uuid.UUID(int=n + 1) for n in range(draw(st.integers(min_value=0, max_value=8)))]
    tree: Tree = {}
    for n, agent in enumerate(agents):
        tree[agent] = draw(st.sampled_from([None, *agents[:n]]))  # parents come first: a tree, no cycle
    listed = draw(st.lists(st.sampled_from(agents), unique=True)) if agents else []
    shares = tuple(AgentShare(agent, draw(bps), draw(bps)) for agent in listed)
    union = draw(st.none() | bps)
    return DealTerms(union, draw(bps), draw(bps), shares), tree


def holds(terms: DealTerms, tree: Tree) -> bool:
    """The rule, stated directly: each layer's number is at most what the layer above it has."""
    if terms.union_bps is not None and terms.club_bps > terms.union_bps:
        return False
    if terms.player_bps > terms.club_bps:
        return False
    listed = {share.agent_id: share for share in terms.agents}
    for share in terms.agents:
        parent = tree[share.agent_id]
        above = terms.club_bps if parent is None else (listed[parent].bps if parent in listed else 0)
        if not share.player_bps <= share.bps <= above:
            return False
    return True


@given(deals())
def test_a_deal_is_accepted_exactly_when_no_layer_hands_down_more_than_it_receives(
    deal: tuple[DealTerms, Tree],
) -> None:
    terms, tree = deal
    try:
        checked = validate(terms, tree)
    except InvalidInput:
        assert not holds(terms, tree)
        return
    assert holds(terms, tree)
    assert all(share.parent_agent_id == tree[share.agent_id] for share in checked.agents)
    # Along every path from an agent up to the club, the numbers never grow going down.
    by_id = {share.agent_id: share for share in checked.agents}
    for share in checked.agents:
        parent = share.parent_agent_id
        while parent is not None:
            if parent not in by_id:  # under an agent left out of the deal (0): nothing reaches this one
                assert share.bps == 0
                break
            assert by_id[parent].bps >= share.bps
            parent = tree[parent]
        assert checked.club_bps >= share.bps
