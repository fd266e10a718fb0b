"""The permission matrix: docs/clubs.md shows the code's, and every cell holds over HTTP (each role, each action)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from club_support import Clubs, bearer
from tablium_club.domain.permissions import MATRIX, Action, Role, matrix_markdown

DOC = Path(__file__).resolve().parents[3] / "docs" / "clubs.md"


def test_the_documented_matrix_is_the_enforced_one() -> None:
    found = re.search(r"<!-- matrix:.*?-->\n(.*?)\n<!-- end matrix -->", DOC.read_text(), re.DOTALL)
    assert found, "docs/clubs.md lost its matrix markers"
    assert found.group(1).strip() == matrix_markdown()


@dataclass
class Setting:
    """A fresh club with one player in each role, and a plain member to act on."""

    club: str
    players: dict[Role, uuid.UUID]
    target: uuid.UUID


async def setting(clubs: Clubs) -> Setting:
    owner = uuid.uuid4()
    club = await clubs.create(owner, privacy="private")
    players = {Role.OWNER: owner, Role.OUTSIDER: uuid.uuid4()}
    for role in (Role.MANAGER, Role.AGENT, Role.MEMBER):
        players[role] = await clubs.add_member(club, owner, role.value)
    return Setting(club, players, await clubs.add_member(club, owner))


Call = Callable[[Clubs, Setting, uuid.UUID], Awaitable[int]]


async def _status(clubs: Clubs, method: str, path: str, who: uuid.UUID, body: object = None) -> int:
    kwargs = {} if body is None else {"json": body}
    response = await clubs.client.request(method, "/api/v1" + path, headers=bearer(who), **kwargs)
    assert response.status_code < 500, response.text
    return response.status_code


CALLS: dict[Action, Call] = {
    Action.VIEW_CLUB: lambda c, s, w: _status(c, "GET", f"/clubs/{s.club}/members", w),
    Action.UPDATE_SETTINGS: lambda c, s, w: _status(c, "PATCH", f"/clubs/{s.club}", w, {"description": "x"}),
    Action.CLOSE_CLUB: lambda c, s, w: _status(c, "POST", f"/clubs/{s.club}/close", w),
    Action.TRANSFER_OWNERSHIP: lambda c, s, w: _status(
        c, "POST", f"/clubs/{s.club}/transfer", w, {"new_owner_id": str(s.target)}
    ),
    Action.MANAGE_INVITES: lambda c, s, w: _status(c, "POST", f"/clubs/{s.club}/invites", w, {}),
    Action.DECIDE_REQUESTS: lambda c, s, w: _status(c, "GET", f"/clubs/{s.club}/requests", w),
    Action.KICK: lambda c, s, w: _status(c, "DELETE", f"/clubs/{s.club}/members/{s.target}", w),
    Action.BAN: lambda c, s, w: _status(c, "PUT", f"/clubs/{s.club}/bans/{s.target}", w, {}),
    Action.SET_MANAGER: lambda c, s, w: _status(
        c, "PUT", f"/clubs/{s.club}/members/{s.target}/role", w, {"role": "manager"}
    ),
    Action.SET_AGENT: lambda c, s, w: _status(
        c, "PUT", f"/clubs/{s.club}/members/{s.target}/role", w, {"role": "agent"}
    ),
    Action.RECRUIT: lambda c, s, w: _status(c, "POST", f"/clubs/{s.club}/agent-code", w),
    Action.VIEW_AGENTS: lambda c, s, w: _status(c, "GET", f"/clubs/{s.club}/agents/tree", w),
    Action.VIEW_DEAL: lambda c, s, w: _status(c, "GET", f"/clubs/{s.club}/deals", w),
    Action.SET_DEAL: lambda c, s, w: _status(
        c, "PUT", f"/clubs/{s.club}/deal", w, {"club_bps": 3000, "player_bps": 1000}
    ),
    Action.MANAGE_UNION: lambda c, s, w: _status(c, "POST", f"/clubs/{s.club}/union", w, {"name": "U"}),
    Action.READ_AUDIT: lambda c, s, w: _status(c, "GET", f"/clubs/{s.club}/audit", w),
    Action.LEAVE: lambda c, s, w: _status(c, "POST", f"/clubs/{s.club}/leave", w),
}


def test_every_action_has_a_call() -> None:
    assert set(CALLS) == set(Action)


@pytest.mark.parametrize("role", list(Role), ids=lambda r: r.value)
@pytest.mark.parametrize("action", list(Action), ids=lambda a: a.name.lower())
async def test_each_role_may_do_exactly_what_the_matrix_says(clubs: Clubs, action: Action, role: Role) -> None:
    where = await setting(clubs)
    status = await CALLS[action](clubs, where, where.players[role])
    if role in MATRIX[action]:
        assert status < 400, (action, role, status)
    else:
        assert status == 403, (action, role, status)
