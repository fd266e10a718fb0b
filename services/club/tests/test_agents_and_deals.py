"""Agents and their tree, deals (validated, versioned, published whole), unions, the audit trail."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from club_support import Clubs, club_events
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker


async def agent_code(clubs: Clubs, club: str, agent: uuid.UUID) -> str:
    invite = await clubs.call("POST", f"/clubs/{club}/agent-code", agent)
    assert invite["agent_id"] == str(agent)
    return str(invite["code"])


async def test_agents_recruit_and_see_only_their_subtree(clubs: Clubs) -> None:
    owner = uuid.uuid4()
    club = await clubs.create(owner)
    agent = await clubs.add_member(club, owner, "agent")
    other_agent = await clubs.add_member(club, owner, "agent")
    code = await agent_code(clubs, club, agent)
    assert await agent_code(clubs, club, agent) == code  # one code per agent
    recruit, sub_agent, sub_recruit, elsewhere = (uuid.uuid4() for _ in range(4))
    assert (await clubs.join(code, recruit))["agent_id"] == str(agent)
    await clubs.join(code, sub_agent)
    await clubs.call("PUT", f"/clubs/{club}/members/{sub_agent}/role", owner, json={"role": "agent"})
    await clubs.join(await agent_code(clubs, club, sub_agent), sub_recruit)
    await clubs.join(await agent_code(clubs, club, other_agent), elsewhere)

    tree = await clubs.call("GET", f"/clubs/{club}/agents/tree", agent)
    assert tree["root"] == str(agent)
    assert {m["player_id"] for m in tree["members"]} == {str(p) for p in (agent, recruit, sub_agent, sub_recruit)}
    sub_tree = await clubs.call("GET", f"/clubs/{club}/agents/tree", sub_agent)
    assert {m["player_id"] for m in sub_tree["members"]} == {str(sub_agent), str(sub_recruit)}
    whole = await clubs.call("GET", f"/clubs/{club}/agents/tree", owner)
    assert whole["root"] is None
    assert len(whole["members"]) == 7
    # An agent cannot go under its own recruit; moving a member across agents is the staff's.
    await clubs.call("PUT", f"/clubs/{club}/members/{agent}/agent", owner, 409, json={"agent_id": str(sub_agent)})
    moved = await clubs.call("PUT", f"/clubs/{club}/members/{elsewhere}/agent", owner, json={"agent_id": str(agent)})
    assert moved["agent_id"] == str(agent)
    # The sub-agent steps down: its recruit moves up to the agent.
    await clubs.call("PUT", f"/clubs/{club}/members/{sub_agent}/role", owner, json={"role": "member"})
    members = await clubs.members(club, owner)
    assert members[str(sub_recruit)]["agent_id"] == str(agent)
    await clubs.call("POST", f"/clubs/{club}/agent-code", sub_agent, 403)


async def test_a_deal_hands_down_no_more_than_each_layer_receives(
    clubs: Clubs, sessions: async_sessionmaker[AsyncSession]
) -> None:
    owner = uuid.uuid4()
    club = await clubs.create(owner)
    agent = await clubs.add_member(club, owner, "agent")
    sub = uuid.uuid4()
    await clubs.join(await agent_code(clubs, club, agent), sub)
    await clubs.call("PUT", f"/clubs/{club}/members/{sub}/role", owner, json={"role": "agent"})

    async def deal(status: int, **body: Any) -> Any:
        return await clubs.call("PUT", f"/clubs/{club}/deal", owner, status, json=body)

    share = {"agent_id": str(agent), "bps": 2000, "player_bps": 500}
    await deal(422, club_bps=3000, player_bps=3500)
    await deal(422, club_bps=3000, player_bps=0, agents=[{**share, "bps": 3001}])
    await deal(422, club_bps=3000, player_bps=0, agents=[{**share, "player_bps": 2001}])
    await deal(422, club_bps=3000, player_bps=0, agents=[{"agent_id": str(sub), "bps": 1, "player_bps": 0}])
    await deal(422, club_bps=3000, player_bps=0, agents=[{**share, "agent_id": str(uuid.uuid4())}])
    await deal(400, club_bps=10001, player_bps=0)  # refused by the schema
    await deal(422, club_bps=3000, player_bps=0, effective_from="2020-01-01T00:00:00Z")
    await deal(400, club_bps=3000, player_bps=0, effective_from="2099-01-01T00:00:00")  # no offset: refused
    first = await deal(
        200, club_bps=3000, player_bps=1000, agents=[share, {"agent_id": str(sub), "bps": 1500, "player_bps": 700}]
    )
    assert first["version"] == 1
    assert first["union_id"] is None
    assert first["union_bps"] is None
    parents = {a["agent_id"]: a["parent_agent_id"] for a in first["agents"]}
    assert parents == {str(agent): None, str(sub): str(agent)}
    later = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    second = await deal(200, club_bps=3500, player_bps=1000, effective_from=later)
    assert second["version"] == 2
    await deal(422, club_bps=3500, player_bps=1000)  # before the previous version's start
    assert [d["version"] for d in await clubs.call("GET", f"/clubs/{club}/deals", agent)] == [2, 1]
    changed = [e for e in await club_events(sessions, club) if e["type"] == "club.deal_changed"]
    assert [e["version"] for e in changed] == [1, 2]
    assert set(changed[0]) == {
        "type",
        "club_id",
        "union_id",
        "version",
        "effective_from",
        "union_bps",
        "club_bps",
        "player_bps",
        "agents",
        "seq",
    }
    assert changed[0]["agents"][1] == {
        "agent_id": str(sub),
        "parent_agent_id": str(agent),
        "bps": 1500,
        "player_bps": 700,
    }
    assert datetime.fromisoformat(changed[1]["effective_from"]) == datetime.fromisoformat(later)


async def test_a_union_takes_clubs_its_owner_approves_and_caps_their_deals(
    clubs: Clubs, sessions: async_sessionmaker[AsyncSession]
) -> None:
    founder, joiner = uuid.uuid4(), uuid.uuid4()
    home = await clubs.create(founder)
    other = await clubs.create(joiner)
    await clubs.call("PUT", f"/clubs/{other}/deal", joiner, json={"club_bps": 4000, "player_bps": 1000})
    union = await clubs.call("POST", f"/clubs/{home}/union", founder, 201, json={"name": "Big Union"})
    union_id = union["id"]
    assert union["clubs"] == [{"club_id": home, "status": "member", "union_bps": 0}]
    asked = await clubs.call("POST", f"/unions/{union_id}/clubs", joiner, json={"club_id": other})
    assert asked["status"] == "pending"
    await clubs.call("POST", f"/unions/{union_id}/clubs/{other}/approve", joiner, 403)
    approved = await clubs.call("POST", f"/unions/{union_id}/clubs/{other}/approve", founder)
    assert approved == {"club_id": other, "status": "member", "union_bps": 4000}
    assert (await clubs.call("POST", f"/unions/{union_id}/clubs/{other}/approve", founder))["status"] == "member"
    deal = await clubs.call("GET", f"/clubs/{other}/deal", joiner)
    assert (deal["version"], deal["union_id"], deal["union_bps"], deal["club_bps"]) == (2, union_id, 4000, 4000)
    # The union's share may not go under what the club hands down; the club may not go over the union's.
    await clubs.call("PUT", f"/unions/{union_id}/clubs/{other}/share", founder, 409, json={"union_bps": 3000})
    await clubs.call("PUT", f"/unions/{union_id}/clubs/{other}/share", founder, json={"union_bps": 5000})
    await clubs.call("PUT", f"/clubs/{other}/deal", joiner, 422, json={"club_bps": 5001, "player_bps": 0})
    assert (await clubs.call("GET", f"/clubs/{other}/deal", joiner))["union_bps"] == 5000
    await clubs.call("DELETE", f"/unions/{union_id}/clubs/{home}", founder, 409)
    await clubs.call("DELETE", f"/unions/{union_id}/clubs/{other}", joiner, 204)
    left = await clubs.call("GET", f"/clubs/{other}/deal", joiner)
    assert (left["union_id"], left["union_bps"], left["club_bps"]) == (None, None, 4000)
    async with sessions() as session:
        rows = await session.execute(
            text("SELECT type, envelope FROM outbox WHERE subject = :u ORDER BY seq"), {"u": union_id}
        )
        union_events = [(t, e["data"]["club_id"], e["data"]["seq"]) for t, e in rows.tuples()]
    assert union_events == [
        ("club.union_joined", home, 1),
        ("club.union_joined", other, 2),
        ("club.union_left", other, 3),
    ]


async def test_the_owner_reads_who_did_what_before_and_after(clubs: Clubs) -> None:
    owner = uuid.uuid4()
    club = await clubs.create(owner, privacy="public")
    manager = await clubs.add_member(club, owner, "manager")
    player = await clubs.add_member(club, owner)
    await clubs.call("PATCH", f"/clubs/{club}", manager, json={"description": "new"})
    await clubs.call("DELETE", f"/clubs/{club}/members/{player}", manager, 204)
    trail = await clubs.call("GET", f"/clubs/{club}/audit", owner)
    kick, settings = trail[0], trail[1]
    assert (kick["action"], kick["actor_id"], kick["target"]) == ("member.kick", str(manager), str(player))
    assert kick["before"] == {"role": "member", "agent_id": None}
    assert settings["before"]["description"] == ""
    assert settings["after"]["description"] == "new"
    page = await clubs.call("GET", f"/clubs/{club}/audit?limit=1&before_id={kick['id']}", owner)
    assert [e["id"] for e in page] == [settings["id"]]
    await clubs.call("GET", f"/clubs/{club}/audit", manager, 403)
