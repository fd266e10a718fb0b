"""Rakeback deals: cumulative basis points of a hand's rake, per layer (docs/events/club.md).

A layer's number is everything that flows down to it, what it hands further down included, so along every
path ``union_bps ≥ club_bps ≥ agent bps ≥ sub-agent bps ≥ player_bps``: no layer hands down more than it
receives. An agent missing from a deal has 0 (its players' rake stops with the nearest listed agent above
it, or the club), so an agent with a share needs every agent above it listed with at least as much.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from tablium_kit.errors import InvalidInput

MAX_BPS = 10_000


@dataclass(frozen=True)
class AgentShare:
    agent_id: uuid.UUID
    bps: int
    player_bps: int
    parent_agent_id: uuid.UUID | None = None


@dataclass(frozen=True)
class DealTerms:
    union_bps: int | None
    club_bps: int
    player_bps: int
    agents: tuple[AgentShare, ...]


def validate(terms: DealTerms, tree: Mapping[uuid.UUID, uuid.UUID | None]) -> DealTerms:
    """``terms`` checked against the club's agent ``tree`` (agent -> its parent agent, None: the club), with
    each agent's parent filled in from the tree; raises :class:`InvalidInput` saying which rule broke.

    >>> a, b = uuid.UUID(int=1), uuid.UUID(int=2)
    >>> validate(DealTerms(None, 3000, 500, (AgentShare(a, 2000, 800), AgentShare(b, 1000, 900))), {a: None, b: a})
    ... # doctest: +ELLIPSIS
    DealTerms(union_bps=None, club_bps=3000, player_bps=500, agents=(...))
    >>> validate(DealTerms(None, 3000, 500, (AgentShare(a, 3500, 0),)), {a: None})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    tablium_kit.errors.InvalidInput: agent ...01 gets 3500 bps, more than its parent's 3000
    """
    for name, value in (("union_bps", terms.union_bps), ("club_bps", terms.club_bps), ("player_bps", terms.player_bps)):
        if value is not None and not 0 <= value <= MAX_BPS:
            raise InvalidInput(f"{name} must be between 0 and {MAX_BPS}")
    if terms.union_bps is not None and terms.club_bps > terms.union_bps:
        raise InvalidInput(f"club_bps {terms.club_bps} is more than the union hands down ({terms.union_bps})")
    if terms.player_bps > terms.club_bps:
        raise InvalidInput(f"player_bps {terms.player_bps} is more than the club's {terms.club_bps}")
    listed: dict[uuid.UUID, AgentShare] = {}
    for share in terms.agents:
        if share.agent_id in listed:
            raise InvalidInput(f"agent {share.agent_id} is listed twice")
        if share.agent_id not in tree:
            raise InvalidInput(f"{share.agent_id} is not an agent of this club")
        if not 0 <= share.player_bps <= share.bps <= MAX_BPS:
            raise InvalidInput(f"agent {share.agent_id}: 0 ≤ player_bps ≤ bps ≤ {MAX_BPS} does not hold")
        listed[share.agent_id] = share
    agents = []
    for share in terms.agents:
        parent = tree[share.agent_id]
        # An unlisted parent has 0 and hands down nothing.
        ceiling = listed[parent].bps if parent in listed else 0
        if parent is None:
            ceiling = terms.club_bps
        if share.bps > ceiling:
            raise InvalidInput(f"agent {share.agent_id} gets {share.bps} bps, more than its parent's {ceiling}")
        agents.append(AgentShare(share.agent_id, share.bps, share.player_bps, parent))
    return DealTerms(terms.union_bps, terms.club_bps, terms.player_bps, tuple(agents))


def bps_cap_issue(terms: DealTerms, union_bps: int | None) -> str | None:
    """Whether the club's layer still fits under a new ``union_bps`` (None: it does)."""
    if union_bps is not None and terms.club_bps > union_bps:
        return f"the club's deal gives {terms.club_bps} bps, more than {union_bps}: lower the club's deal first"
    return None
