"""The split of one player's rake under a deal snapshot. Pure: no I/O.

Deals are in cumulative basis points (docs/events/club.md): a layer's number is everything that flows
down to it, so it keeps its number minus the next layer's, and the platform keeps ``10000`` minus the
top layer's. The parts are rounded to the unit by largest remainder, so they always sum to the rake.

>>> deal = Deal(club_id="c", union_id=None, version=1, union_bps=None, club_bps=3000, player_bps=1000)
>>> [(p.kind, p.amount) for p in split(101, layers(deal, player_id="p", agent_id=None, union_id=None))]
[('platform', 71), ('club', 20), ('player', 10)]
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, NamedTuple

BPS = 10_000
PLATFORM = "platform"

Kind = Literal["platform", "union", "club", "agent", "player"]


class InvalidDeal(ValueError):
    """A deal that breaks a rule of docs/events/club.md (a layer handing down more than it receives...)."""


@dataclass(frozen=True)
class AgentDeal:
    agent_id: str
    parent_agent_id: str | None
    bps: int
    player_bps: int


@dataclass(frozen=True)
class Deal:
    club_id: str
    union_id: str | None
    version: int
    union_bps: int | None
    club_bps: int
    player_bps: int
    agents: tuple[AgentDeal, ...] = ()
    effective_from: datetime | None = None
    _by_id: dict[str, AgentDeal] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._by_id.update({a.agent_id: a for a in self.agents})

    def agent(self, agent_id: str) -> AgentDeal | None:
        return self._by_id.get(agent_id)


@dataclass(frozen=True)
class Layer:
    """One receiver of a rake and its cumulative basis points (what flows down to it)."""

    kind: Kind
    beneficiary: str
    cumulative_bps: int


class Part(NamedTuple):
    """One receiver's part of a rake (a tuple: a batch builds thousands)."""

    kind: Kind
    beneficiary: str
    bps: int  # what this layer keeps
    amount: int


def validate(deal: Deal) -> None:
    """Raise :class:`InvalidDeal` unless every path hands down no more than it receives."""

    def check_range(name: str, value: int) -> None:
        if not 0 <= value <= BPS:
            raise InvalidDeal(f"{name} must be 0..{BPS}, not {value}")

    if deal.version < 1:
        raise InvalidDeal("version must be at least 1")
    check_range("club_bps", deal.club_bps)
    check_range("player_bps", deal.player_bps)
    if deal.union_bps is not None:
        check_range("union_bps", deal.union_bps)
        if deal.union_bps < deal.club_bps:
            raise InvalidDeal("club_bps exceeds union_bps")
    if deal.player_bps > deal.club_bps:
        raise InvalidDeal("player_bps exceeds club_bps")
    if len(deal._by_id) != len(deal.agents):
        raise InvalidDeal("an agent appears twice")
    for agent in deal.agents:
        check_range(f"agent {agent.agent_id} bps", agent.bps)
        check_range(f"agent {agent.agent_id} player_bps", agent.player_bps)
        if agent.player_bps > agent.bps:
            raise InvalidDeal(f"agent {agent.agent_id}: player_bps exceeds bps")
        if agent.parent_agent_id is None:
            above = deal.club_bps
        else:
            parent = deal.agent(agent.parent_agent_id)
            if parent is None:
                raise InvalidDeal(f"agent {agent.agent_id}: unknown parent {agent.parent_agent_id}")
            above = parent.bps
        if agent.bps > above:
            raise InvalidDeal(f"agent {agent.agent_id} receives more than its parent")
        _chain(deal, agent.agent_id)  # refuses cycles


def _chain(deal: Deal, agent_id: str) -> list[AgentDeal]:
    """The agents from the one under the club down to ``agent_id``."""
    chain: list[AgentDeal] = []
    current = deal.agent(agent_id)
    while current is not None:
        if len(chain) > len(deal.agents):
            raise InvalidDeal(f"agent {agent_id}: the agent tree has a cycle")
        chain.append(current)
        current = deal.agent(current.parent_agent_id) if current.parent_agent_id else None
    chain.reverse()
    return chain


def layers(deal: Deal, *, player_id: str, agent_id: str | None, union_id: str | None) -> list[Layer]:
    """The receivers of a member's rake, top to bottom.

    ``union_id``: the union of the table the hand was played at; the union takes its part only there
    (a club's own tables are not the union's). ``agent_id``: the member's recruiting agent; one the deal
    does not name gives the member the club's ``player_bps`` and the club the rest.
    """
    result = [Layer("platform", PLATFORM, BPS)]
    if union_id is not None and deal.union_bps is not None:
        result.append(Layer("union", union_id, deal.union_bps))
    result.append(Layer("club", deal.club_id, deal.club_bps))
    chain = _chain(deal, agent_id) if agent_id is not None else []
    result += [Layer("agent", a.agent_id, a.bps) for a in chain]
    result.append(Layer("player", player_id, chain[-1].player_bps if chain else deal.player_bps))
    return result


def tier_layers(*, player_id: str, bps: int) -> list[Layer]:
    """A player outside clubs: the platform keeps what its tier does not give back."""
    return [Layer("platform", PLATFORM, BPS), Layer("player", player_id, bps)]


@dataclass(frozen=True, slots=True)
class Receivers:
    """A chain of layers checked once, with what each keeps: a batch splits thousands of rakes along a
    handful of chains (:func:`split_along`)."""

    layers: tuple[Layer, ...]
    kept: tuple[int, ...]


def receivers(chain: list[Layer]) -> Receivers:
    kept = [layer.cumulative_bps - below.cumulative_bps for layer, below in itertools.pairwise(chain)]
    kept.append(chain[-1].cumulative_bps)
    if any(k < 0 for k in kept) or sum(kept) != BPS:
        raise InvalidDeal("a layer hands down more than it receives")
    return Receivers(tuple(chain), tuple(kept))


def split(rake: int, chain: list[Layer]) -> list[Part]:
    """Each layer's part of ``rake``, to the unit; the parts sum to ``rake`` exactly.

    Largest remainder: every part is its exact share rounded down, then the units left go one each to
    the parts with the largest fractions (ties to the layer nearer the top).
    """
    return split_along(rake, receivers(chain))


def split_along(rake: int, chain: Receivers) -> list[Part]:
    """:func:`split` along receivers checked already."""
    return [
        Part(layer.kind, layer.beneficiary, bps, amount)
        for layer, bps, amount in zip(chain.layers, chain.kept, amounts_along(rake, chain.kept), strict=True)
    ]


def amounts_along(rake: int, kept: tuple[int, ...]) -> list[int]:
    """The parts' amounts alone, layer by layer (what :func:`split_along` rounds): a batch adds these up
    per chain without building a :class:`Part` per rake and layer."""
    if rake < 0:
        raise ValueError("a rake is never negative")
    floors = [rake * k // BPS for k in kept]
    left = rake - sum(floors)
    if left:
        fractions = [rake * k % BPS for k in kept]
        for index in sorted(range(len(kept)), key=lambda i: (-fractions[i], i))[:left]:
            floors[index] += 1
    return floors
