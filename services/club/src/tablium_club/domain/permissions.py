"""Who may do what in a club: the permission matrix (docs/clubs.md renders the same table; a test keeps
them equal, another calls every endpoint as every role).

Roles are per club. ``outsider`` is anyone who is not a member (a union owner acting on the union is
checked by ownership of the union, not here).
"""

from __future__ import annotations

from enum import StrEnum

from tablium_kit.errors import Forbidden


class Role(StrEnum):
    OWNER = "owner"
    MANAGER = "manager"
    AGENT = "agent"
    MEMBER = "member"
    OUTSIDER = "outsider"


# Roles a member can hold (an outsider holds none).
MEMBER_ROLES = (Role.OWNER, Role.MANAGER, Role.AGENT, Role.MEMBER)


class Action(StrEnum):
    VIEW_CLUB = "view club and members"
    UPDATE_SETTINGS = "change settings"
    CLOSE_CLUB = "close the club"
    TRANSFER_OWNERSHIP = "transfer ownership"
    MANAGE_INVITES = "create, list and revoke invite codes"
    DECIDE_REQUESTS = "list, approve and reject join requests"
    KICK = "kick a member"
    BAN = "ban and unban"
    SET_MANAGER = "make or unmake a manager"
    SET_AGENT = "make or unmake an agent, move a member under an agent"
    RECRUIT = "own recruiting code"
    VIEW_AGENTS = "view the agent tree (an agent: its subtree)"
    VIEW_DEAL = "view the deal"
    SET_DEAL = "change the deal"
    MANAGE_UNION = "create, join and leave unions"
    READ_AUDIT = "read the audit trail"
    LEAVE = "leave the club"


_ALL_MEMBERS = frozenset(MEMBER_ROLES)
_STAFF = frozenset({Role.OWNER, Role.MANAGER})
_OWNER = frozenset({Role.OWNER})

MATRIX: dict[Action, frozenset[Role]] = {
    Action.VIEW_CLUB: _ALL_MEMBERS,
    Action.UPDATE_SETTINGS: _STAFF,
    Action.CLOSE_CLUB: _OWNER,
    Action.TRANSFER_OWNERSHIP: _OWNER,
    Action.MANAGE_INVITES: _STAFF,
    Action.DECIDE_REQUESTS: _STAFF,
    Action.KICK: _STAFF,
    Action.BAN: _STAFF,
    Action.SET_MANAGER: _OWNER,
    Action.SET_AGENT: _STAFF,
    Action.RECRUIT: frozenset({Role.AGENT}),
    Action.VIEW_AGENTS: frozenset({Role.OWNER, Role.MANAGER, Role.AGENT}),
    Action.VIEW_DEAL: frozenset({Role.OWNER, Role.MANAGER, Role.AGENT}),
    Action.SET_DEAL: _STAFF,
    Action.MANAGE_UNION: _OWNER,
    Action.READ_AUDIT: _OWNER,
    # The owner transfers ownership first: a club always has one.
    Action.LEAVE: frozenset({Role.MANAGER, Role.AGENT, Role.MEMBER}),
}

# How far each role reaches over others: a manager may act on agents and members, never on the owner or
# another manager (kick, ban, role changes).
_RANK = {Role.OWNER: 3, Role.MANAGER: 2, Role.AGENT: 1, Role.MEMBER: 1, Role.OUTSIDER: 0}


def allowed(role: Role, action: Action) -> bool:
    return role in MATRIX[action]


def require(role: Role, action: Action) -> None:
    if not allowed(role, action):
        raise Forbidden(f"a club {role.value} may not {action.value}")


def require_outranks(actor: Role, target: Role) -> None:
    """``actor`` acts on a member of ``target`` role: only over lower ranks (the owner over everyone else)."""
    if _RANK[actor] <= _RANK[target]:
        raise Forbidden(f"a club {actor.value} may not act on a club {target.value}")


def matrix_markdown() -> str:
    """The matrix as the Markdown table docs/clubs.md carries."""
    roles = list(Role)
    lines = [
        "| action | " + " | ".join(role.value for role in roles) + " |",
        "|---|" + "---|" * len(roles),
    ]
    for action, permitted in MATRIX.items():
        cells = " | ".join("✓" if role in permitted else "✗" for role in roles)
        lines.append(f"| {action.value} | {cells} |")
    return "\n".join(lines)
