"""The agent tree: each member points at the agent who recruited it (an agent at its parent agent)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping


def children(parents: Mapping[uuid.UUID, uuid.UUID | None]) -> dict[uuid.UUID | None, list[uuid.UUID]]:
    below: dict[uuid.UUID | None, list[uuid.UUID]] = {}
    for player, parent in parents.items():
        below.setdefault(parent, []).append(player)
    return below


def subtree(parents: Mapping[uuid.UUID, uuid.UUID | None], root: uuid.UUID) -> set[uuid.UUID]:
    """``root`` and everyone under it, however deep.

    >>> a, b, c, d = (uuid.UUID(int=n) for n in range(1, 5))
    >>> sorted(n.int for n in subtree({a: None, b: a, c: b, d: None}, a))
    [1, 2, 3]
    """
    below = children(parents)
    found = {root}
    pending = [root]
    while pending:
        for child in below.get(pending.pop(), []):
            if child not in found:
                found.add(child)
                pending.append(child)
    return found


def would_cycle(parents: Mapping[uuid.UUID, uuid.UUID | None], member: uuid.UUID, new_parent: uuid.UUID) -> bool:
    """Whether putting ``member`` under ``new_parent`` would make it its own ancestor."""
    return new_parent in subtree(parents, member)


def agents_only(
    parents: Mapping[uuid.UUID, uuid.UUID | None], agents: Iterable[uuid.UUID]
) -> dict[uuid.UUID, uuid.UUID | None]:
    """The tree restricted to agents (a deal's layers): each agent's parent agent."""
    wanted = set(agents)
    return {agent: parents.get(agent) for agent in wanted}
