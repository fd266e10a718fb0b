"""Dissolving a union: its owner only; each member club leaves it (event, deal, audit), the union is gone."""

from __future__ import annotations

import uuid

from club_support import Clubs
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker


async def test_the_unions_owner_dissolves_it_and_every_club_leaves_it(
    clubs: Clubs, sessions: async_sessionmaker[AsyncSession]
) -> None:
    founder, joiner, asker = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    home, other, waiting = await clubs.create(founder), await clubs.create(joiner), await clubs.create(asker)
    await clubs.call("PUT", f"/clubs/{other}/deal", joiner, json={"club_bps": 4000, "player_bps": 1000})
    union_id = (await clubs.call("POST", f"/clubs/{home}/union", founder, 201, json={"name": "Short-lived"}))["id"]
    await clubs.call("POST", f"/unions/{union_id}/clubs", joiner, json={"club_id": other})
    await clubs.call("POST", f"/unions/{union_id}/clubs/{other}/approve", founder)
    await clubs.call("POST", f"/unions/{union_id}/clubs", asker, json={"club_id": waiting})  # still pending

    # Only the union's owner: not a member club's owner, not a stranger; an unknown union is a 404.
    await clubs.call("DELETE", f"/unions/{union_id}", joiner, 403)
    await clubs.call("DELETE", f"/unions/{union_id}", uuid.uuid4(), 403)
    await clubs.call("DELETE", f"/unions/{uuid.uuid4()}", founder, 404)
    await clubs.call("DELETE", f"/unions/{union_id}", founder, 204)

    await clubs.call("GET", f"/unions/{union_id}", founder, 404)
    await clubs.call("DELETE", f"/unions/{union_id}", founder, 404)  # dissolving it again: nothing there
    for club, owner in ((home, founder), (other, joiner)):
        deal = await clubs.call("GET", f"/clubs/{club}/deal", owner)
        assert (deal["union_id"], deal["union_bps"]) == (None, None)
        (entry, *_) = await clubs.call("GET", f"/clubs/{club}/audit", owner)
        assert (entry["action"], entry["actor_id"], entry["target"]) == ("union.dissolve", str(founder), union_id)
        assert entry["before"] == {"union_id": union_id}
    assert (await clubs.call("GET", f"/clubs/{other}/deal", joiner))["club_bps"] == 4000  # its own layers kept
    # The pending request went with the union: the club is free to found its own.
    await clubs.call("POST", f"/clubs/{waiting}/union", asker, 201, json={"name": "Next"})

    async with sessions() as session:
        rows = await session.execute(
            text("SELECT type, envelope FROM outbox WHERE subject = :u ORDER BY seq"), {"u": union_id}
        )
        events = [(t, e["data"]) for t, e in rows.tuples()]
    left = sorted([home, other])
    assert [(t, d.get("club_id"), d["seq"]) for t, d in events] == [
        ("club.union_joined", home, 1),
        ("club.union_joined", other, 2),
        ("club.union_left", left[0], 3),
        ("club.union_left", left[1], 4),
        ("club.union_dissolved", None, 5),
    ]
    assert events[-1][1]["clubs"] == left
