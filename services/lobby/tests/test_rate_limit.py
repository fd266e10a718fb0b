"""A socket's message rate limit (``ws_messages_per_s``) against clients that play by the rules.

A bot acting on each of its turns at once can outrun the limit when hands go fast (heads-up, the hot path):
the action the server refuses unread must be answered as a refused *action*, so the client can send it
again, and the bot does. Before, the refusal had no ``action`` (only the first was answered at all) and the
bot never acted on that turn again: the table waited for the clock, then the whole time bank
(test_play.py's heads-up test, 2 in 4 whole-suite runs).
"""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from typing import Any

import httpx
import pytest
import websockets
from lobby_support import Ledger, LobbyProcess, bearer, new_table
from tablium_lobby.bots import POLICIES, Bot
from test_play import play_and_account

RATE = 4  # messages a second per socket: a heads-up bot acting at once outruns it within a hand


@pytest.fixture(scope="module")
async def lobby(start_lobby: Any) -> LobbyProcess:
    process: LobbyProcess = await start_lobby(between_hands_s="0.02", ws_messages_per_s=str(RATE))
    return process


async def test_bots_faster_than_the_rate_limit_keep_playing(lobby: LobbyProcess, ledger: Ledger) -> None:
    _, bots = await play_and_account(lobby, ledger, [200, 150], "random", hands=4, seed=1, rake_bps=500)
    refused = [e for bot in bots for e in bot.errors if e.get("code") == "rate-limited"]
    assert refused, "the bots outran the limit (else this test shows nothing)"
    assert all(e.get("action") for e in refused), refused


async def test_every_action_the_rate_limit_refuses_is_answered_as_such(lobby: LobbyProcess) -> None:
    sent = 5 * RATE  # back to back: most are refused unread
    async with httpx.AsyncClient(base_url=lobby.url, timeout=30) as http:
        table = await new_table(http, seats=2)
    ws = f"{lobby.ws_url}/api/v1/tables/{table['id']}/ws"
    async with websockets.connect(ws, additional_headers=bearer(str(uuid.uuid4()))) as socket:
        for _ in range(sent):
            await socket.send(json.dumps({"type": "action", "action": "fold", "seq": 1}))
        errors: list[dict[str, Any]] = []
        async with asyncio.timeout(30):  # a hang guard: every action is answered, none dropped unanswered
            while len(errors) < sent:
                message = json.loads(await socket.recv())
                if message["type"] == "error":
                    errors.append(message)
    assert all(e.get("action") == "fold" for e in errors), errors
    limited = [e for e in errors if e.get("code") == "rate-limited"]
    assert limited, errors
    assert all(isinstance(e["retryAfterMs"], int) and e["retryAfterMs"] > 0 for e in limited), limited


@pytest.fixture(scope="module")
async def quick_lobby(start_lobby: Any) -> LobbyProcess:
    """A limit high enough that a client can wait out more refusals than the flood limit in a second or two."""
    process: LobbyProcess = await start_lobby(ws_messages_per_s="100")
    return process


async def test_a_client_that_waits_as_told_after_each_refusal_is_never_closed_as_a_flood(
    quick_lobby: LobbyProcess,
) -> None:
    """Past the flood limit's count of refusals, a client that sends again only after each refusal's
    retryAfterMs (at the limit for minutes, say) is pacing itself, not flooding: it stays connected."""
    async with httpx.AsyncClient(base_url=quick_lobby.url, timeout=30) as http:
        table = await new_table(http, seats=2)
    ws = f"{quick_lobby.ws_url}/api/v1/tables/{table['id']}/ws"
    action = json.dumps({"type": "action", "action": "fold", "seq": 1})
    refusals = 0
    async with websockets.connect(ws, additional_headers=bearer(str(uuid.uuid4()))) as socket:
        # A guard against a hang only: ~300 round trips and 150 waits take seconds, but minutes on a machine
        # loaded ~12 deep (seen once, with two suites and a benchmark beside it).
        async with asyncio.timeout(240):
            while refusals <= 150:  # FLOOD_LIMIT is 100
                await socket.send(action)  # at once after an answer: over the limit
                while (message := json.loads(await socket.recv()))["type"] != "error":
                    pass
                assert message.get("error") != "flooding; closing", f"closed after {refusals} waited-out refusals"
                if message.get("code") == "rate-limited":
                    refusals += 1
                    await asyncio.sleep(message["retryAfterMs"] / 1000)
            await socket.send(json.dumps({"type": "heartbeat"}))
            while (message := json.loads(await socket.recv()))["type"] != "heartbeat":
                assert message["type"] != "error", message


class _Socket:
    """What a bot sends, without a server."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    async def send(self, raw: str) -> None:
        self.sent.append(json.loads(raw))


@pytest.mark.parametrize("code", ["rate-limited", "retry"])
async def test_a_bot_sends_again_an_action_refused_unread_or_not_recorded(code: str) -> None:
    bot = Bot("ws://unused", "", "me", POLICIES["random"], rng=random.Random(1))
    bot.socket = socket = _Socket()
    legal = {"fold": True, "check": False, "call": "2", "minRaiseTo": "4", "maxRaiseTo": "100"}
    await bot.on_message({"type": "turn", "seq": 7, "seat": 0, "userId": "me", "legal": legal})
    assert len(socket.sent) == 1
    first = socket.sent[0]
    await bot.on_message(
        {
            "type": "error",
            "error": "not taken",
            "code": code,
            "action": first["action"],
            "retryAfterMs": 1,
        }
    )
    assert socket.sent == [first, first], "the same action, for the same seq, once the rate allows"
