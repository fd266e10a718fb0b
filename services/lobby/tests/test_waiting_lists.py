"""Waiting lists hear of free seats at once, not on the periodic pass (off here: once an hour): a new table's
seats, and a seat whose buy-in the wallet refused. A refused buy-in after an accepted offer leaves the
waiting entry ``refused`` (out of the line, saying why), not ``seated`` with no seat."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from lobby_support import Ledger, LobbyProcess, bearer, new_table
from quick_seat_support import entries, funded, offer_of, quick_seat, stakes

FUNDS = 100_000


@pytest.fixture(scope="module")
async def lobby(start_lobby: Any) -> LobbyProcess:
    # No periodic pass after the one at start: whatever reaches a list here was sent there by the change.
    process: LobbyProcess = await start_lobby(matching_interval_s="3600")
    return process


async def offers_now(http: httpx.AsyncClient, player: str) -> list[dict[str, Any]]:
    return [e["offer"] for e in await entries(http, player) if e["offer"] is not None]


async def test_a_new_table_is_offered_to_the_line_before_its_creation_is_answered(
    lobby: LobbyProcess, ledger: Ledger
) -> None:
    small, big = stakes()
    async with httpx.AsyncClient(base_url=lobby.url, timeout=30) as http:
        first, second = await funded(ledger, [str(uuid.uuid4()) for _ in range(2)], FUNDS)
        for player in (first, second):
            waiting = (await quick_seat(http, player, small, big, 2, 50 * big)).json()
            assert waiting["status"] == "waiting"
        table = await new_table(http, small_blind=str(small), big_blind=str(big), seats=2)
        # Asked right after the 201, no waiting: both seats are held for the two in line.
        offered = [await offers_now(http, player) for player in (first, second)]
        assert [[(o["table_id"], o["seat"]) for o in mine] for mine in offered] == [
            [(table["id"], 0)],
            [(table["id"], 1)],
        ]


async def test_a_buy_in_refused_after_an_accepted_offer_marks_the_entry_and_passes_the_seat_on(
    lobby: LobbyProcess, ledger: Ledger
) -> None:
    small, big = stakes()
    buy_in = 50 * big
    async with httpx.AsyncClient(base_url=lobby.url, timeout=30) as http:
        # A short clock: the hand the two seated players are dealt ends soon, nobody acting, and a leave
        # during it frees the seat then.
        blinds = {"small_blind": str(small), "big_blind": str(big)}
        table = await new_table(http, **blinds, seats=2, action_clock_s=1, time_bank_s=0)
        a, b, next_one = await funded(ledger, [str(uuid.uuid4()) for _ in range(3)], FUNDS)
        poor = (await funded(ledger, [str(uuid.uuid4())], buy_in - 1))[0]
        answers = [(await quick_seat(http, p, small, big, 2, buy_in)).json() for p in (a, b, poor, next_one)]
        assert [x["status"] for x in answers] == ["seated", "seated", "waiting", "waiting"]
        entry_id = answers[2]["entry"]["id"]

        left = await http.delete(f"/api/v1/tables/{table['id']}/seats/me", headers=bearer(a))
        assert left.status_code == 200, left.text
        offer = await offer_of(http, poor)  # the seat change wakes the list's pass (no periodic pass here)
        refused = await http.post(f"/api/v1/seat-offers/{offer['id']}/accept", json={}, headers=bearer(poor))
        assert refused.status_code == 409, refused.text
        assert refused.json()["type"] == "urn:tablium:problem:buy-in-refused"

        # Answered only once the seat was offered on: the next in line holds it now.
        assert [(o["table_id"], o["seat"]) for o in await offers_now(http, next_one)] == [
            (offer["table_id"], offer["seat"])
        ]
        # The refused player is out of the line, and their entry says why; their money never moved.
        assert await entries(http, poor) == []
        mine = await http.delete(f"/api/v1/waiting-lists/me/{entry_id}", headers=bearer(poor))
        assert (mine.status_code, mine.json()["status"]) == (200, "refused")
        assert await ledger.player_balance(poor) == buy_in - 1
        view = (await http.get(f"/api/v1/tables/{table['id']}")).json()
        assert poor not in [p["player_id"] for p in view["players"]]
