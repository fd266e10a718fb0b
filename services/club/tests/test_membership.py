"""Clubs, invite codes, join requests and decisions, leaving, kicks, bans, ownership; the events they write."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from club_support import Clubs, club_events
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker


async def test_the_creator_owns_the_club_and_can_change_its_settings(
    clubs: Clubs, sessions: async_sessionmaker[AsyncSession]
) -> None:
    owner = uuid.uuid4()
    club = await clubs.create(owner, description="Friday game", privacy="public")
    changed = await clubs.call(
        "PATCH",
        f"/clubs/{club}",
        owner,
        json={"name": "Renamed", "logo_url": "https://example.com/l.png", "default_table_rules": {"seats": 9}},
    )
    assert changed["name"] == "Renamed"
    assert changed["description"] == "Friday game"
    assert changed["default_table_rules"]["seats"] == 9
    assert (await clubs.members(club, owner))[str(owner)]["role"] == "owner"
    mine = await clubs.call("GET", "/clubs/mine", owner)
    assert [c["id"] for c in mine] == [club]
    assert club in [c["id"] for c in await clubs.call("GET", "/clubs", uuid.uuid4())]
    events = await club_events(sessions, club)
    assert [e["type"] for e in events] == ["club.created", "club.member_joined"]
    assert events[0] == {"type": "club.created", "club_id": club, "owner_id": str(owner), "name": "The Club", "seq": 1}
    assert events[1]["role"] == "owner"
    assert events[1]["agent_id"] is None
    assert events[1]["seq"] == 2


async def test_a_private_club_is_hidden_from_outsiders_and_takes_no_requests(clubs: Clubs) -> None:
    club = await clubs.create(uuid.uuid4())
    await clubs.call("GET", f"/clubs/{club}", uuid.uuid4(), 403)
    await clubs.call("POST", f"/clubs/{club}/requests", uuid.uuid4(), 403, json={})
    await clubs.call("GET", f"/clubs/{uuid.uuid4()}", uuid.uuid4(), 404)


async def test_invite_codes_expire_run_out_and_can_be_revoked(clubs: Clubs) -> None:
    owner = uuid.uuid4()
    club = await clubs.create(owner)
    once = await clubs.invite(club, owner, max_uses=1)
    first = uuid.uuid4()
    joined = await clubs.join(once, first)
    assert joined["role"] == "member"
    assert joined["agent_id"] is None
    assert await clubs.join(once, first) == joined  # a member using it again uses nothing up
    problem = await clubs.join(once, uuid.uuid4(), 409)
    assert "used up" in problem["detail"]
    soon = await clubs.invite(club, owner, expires_at=(datetime.now(UTC) + timedelta(seconds=1)).isoformat())
    await clubs.call("POST", f"/clubs/{club}/invites", owner, 422, json={"expires_at": "2020-01-01T00:00:00Z"})
    revoked = await clubs.invite(club, owner)
    listed = await clubs.call("POST", f"/clubs/{club}/invites/{revoked}/revoke", owner)
    assert listed["revoked"] is True
    assert "revoked" in (await clubs.join(revoked, uuid.uuid4(), 409))["detail"]
    codes = {i["code"]: i for i in await clubs.call("GET", f"/clubs/{club}/invites", owner)}
    assert codes[once]["uses"] == 1
    await clubs.join("ABCDEFGHJK", uuid.uuid4(), 404)
    assert soon in codes


async def test_a_request_is_approved_once_or_rejected_and_asking_twice_is_one_request(
    clubs: Clubs, sessions: async_sessionmaker[AsyncSession]
) -> None:
    owner, player, other = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    club = await clubs.create(owner, privacy="public")
    request = await clubs.call("POST", f"/clubs/{club}/requests", player, 201, json={"message": "hi"})
    again = await clubs.call("POST", f"/clubs/{club}/requests", player, 201, json={})
    assert again["id"] == request["id"]
    pending = await clubs.call("GET", f"/clubs/{club}/requests", owner)
    assert [r["id"] for r in pending] == [request["id"]]
    approved = await clubs.call("POST", f"/clubs/{club}/requests/{request['id']}/approve", owner)
    assert approved["status"] == "approved"
    assert (await clubs.call("POST", f"/clubs/{club}/requests/{request['id']}/approve", owner))["status"] == "approved"
    await clubs.call("POST", f"/clubs/{club}/requests/{request['id']}/reject", owner, 409)
    assert str(player) in await clubs.members(club, owner)
    await clubs.call("POST", f"/clubs/{club}/requests", player, 409, json={})

    turned_down = await clubs.call("POST", f"/clubs/{club}/requests", other, 201, json={})
    rejected = await clubs.call("POST", f"/clubs/{club}/requests/{turned_down['id']}/reject", owner)
    assert rejected["status"] == "rejected"
    assert (await clubs.call("GET", f"/clubs/{club}/requests/me", other))["status"] == "rejected"
    assert str(other) not in await clubs.members(club, owner)
    joined = [e for e in await club_events(sessions, club) if e["type"] == "club.member_joined"]
    assert [e["player_id"] for e in joined] == [str(owner), str(player)]


async def test_members_leave_managers_kick_and_a_banned_player_cannot_come_back(
    clubs: Clubs, sessions: async_sessionmaker[AsyncSession]
) -> None:
    owner = uuid.uuid4()
    club = await clubs.create(owner, privacy="public")
    leaver = await clubs.add_member(club, owner)
    kicked = await clubs.add_member(club, owner)
    banned = await clubs.add_member(club, owner)
    manager = await clubs.add_member(club, owner, "manager")
    await clubs.call("POST", f"/clubs/{club}/leave", leaver, 204)
    await clubs.call("POST", f"/clubs/{club}/leave", owner, 403)  # the owner transfers first
    await clubs.call("DELETE", f"/clubs/{club}/members/{kicked}", manager, 204)
    await clubs.call("DELETE", f"/clubs/{club}/members/{owner}", manager, 403)
    await clubs.call("PUT", f"/clubs/{club}/bans/{banned}", manager, json={"reason": "collusion"})
    await clubs.call("PUT", f"/clubs/{club}/bans/{banned}", manager, json={})  # banning twice is one ban
    assert set(await clubs.members(club, owner)) == {str(owner), str(manager)}
    assert "banned" in (await clubs.call("POST", f"/clubs/{club}/requests", banned, 403, json={}))["detail"]
    await clubs.join(await clubs.invite(club, owner), banned, 403)
    assert [b["player_id"] for b in await clubs.call("GET", f"/clubs/{club}/bans", owner)] == [str(banned)]
    await clubs.call("DELETE", f"/clubs/{club}/bans/{banned}", owner, 204)
    await clubs.call("POST", f"/clubs/{club}/requests", banned, 201, json={})
    left = [(e["player_id"], e["reason"]) for e in await club_events(sessions, club) if e["type"] == "club.member_left"]
    assert left == [(str(leaver), "left"), (str(kicked), "kicked"), (str(banned), "banned")]
    seqs = [e["seq"] for e in await club_events(sessions, club)]
    assert seqs == list(range(1, len(seqs) + 1))


async def test_ownership_moves_to_a_member_and_the_old_owner_stays_as_manager(clubs: Clubs) -> None:
    owner = uuid.uuid4()
    club = await clubs.create(owner)
    heir = await clubs.add_member(club, owner)
    await clubs.call("POST", f"/clubs/{club}/transfer", owner, 404, json={"new_owner_id": str(uuid.uuid4())})
    moved = await clubs.call("POST", f"/clubs/{club}/transfer", owner, json={"new_owner_id": str(heir)})
    assert moved["role"] == "owner"
    roles = {p: m["role"] for p, m in (await clubs.members(club, heir)).items()}
    assert roles == {str(owner): "manager", str(heir): "owner"}
    await clubs.call("POST", f"/clubs/{club}/transfer", owner, 403, json={"new_owner_id": str(owner)})
    assert (await clubs.call("GET", f"/clubs/{club}", heir))["owner_id"] == str(heir)


async def test_a_closed_club_takes_no_more_changes(clubs: Clubs, sessions: async_sessionmaker[AsyncSession]) -> None:
    owner = uuid.uuid4()
    club = await clubs.create(owner, privacy="public")
    code = await clubs.invite(club, owner)
    closed = await clubs.call("POST", f"/clubs/{club}/close", owner)
    assert closed["status"] == "closed"
    assert (await clubs.call("POST", f"/clubs/{club}/close", owner))["status"] == "closed"
    await clubs.join(code, uuid.uuid4(), 409)
    await clubs.call("PATCH", f"/clubs/{club}", owner, 409, json={"name": "x"})
    await clubs.call("POST", f"/clubs/{club}/requests", uuid.uuid4(), 409, json={})
    assert [e["type"] for e in await club_events(sessions, club)].count("club.closed") == 1
