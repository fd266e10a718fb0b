"""A bot: one WebSocket to one table, acting on its turns with a policy (protocol v1)."""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any

import websockets

from tablium_lobby.bots.policy import Policy


class Bot:
    def __init__(
        self,
        ws_url: str,
        token: str,
        player_id: str,
        policy: Policy,
        *,
        rng: random.Random | None = None,
        think_s: float = 0.0,
    ) -> None:
        self.ws_url = ws_url
        self.token = token
        self.player_id = player_id
        self.policy = policy
        self.rng = rng or random.Random()  # noqa: S311 - a bot's choices, not security
        self.think_s = think_s
        self.received: list[dict[str, Any]] = []
        self.seq = 0
        self.cards = ""
        self.hands_ended = 0
        self.errors: list[dict[str, Any]] = []
        self.socket: Any = None
        self._pending_turn: dict[str, Any] | None = None
        self._last_action: dict[str, Any] | None = (
            None  # what it sent for the pending turn (sent again if refused unread)
        )

    async def connect(self) -> None:
        self.socket = await websockets.connect(
            self.ws_url, additional_headers={"Authorization": f"Bearer {self.token}"}, max_size=2**20
        )

    async def send(self, message: dict[str, Any]) -> None:
        await self.socket.send(json.dumps(message))

    async def close(self) -> None:
        if self.socket is not None:
            await self.socket.close()

    async def play(self, hands: int, *, timeout_s: float = 60.0) -> None:
        """Play until ``hands`` hands ended at the table (or the socket closes)."""
        if self.socket is None:
            await self.connect()
        async with asyncio.timeout(timeout_s):
            async for raw in self.socket:
                message = json.loads(raw)
                await self.on_message(message)
                if self.hands_ended >= hands:
                    return

    async def on_message(self, message: dict[str, Any]) -> None:
        self.received.append(message)
        seq = message.get("seq")
        if isinstance(seq, int):
            if seq < self.seq:
                return  # stale: dropped, as the protocol says
            self.seq = seq
        kind = message.get("type")
        if kind == "snapshot":
            await self._resume(message)
        elif kind == "new-player-card":
            self.cards = "".join(c["rank"] + c["suit"] for c in message["cards"])
        elif kind == "round-result":
            self.hands_ended += 1
            self.cards = ""
            self._pending_turn = None
        elif kind == "turn" and "legal" in message:
            self._pending_turn = message
            await self._act(message)
        elif kind == "turn":
            self._pending_turn = None
        elif kind == "error":
            self.errors.append(message)
            turn = self._pending_turn
            if turn is not None and "action" in message and message.get("code") in ("rate-limited", "retry"):
                # Refused unread (the socket's message rate) or not recorded (the server failed), not decided on:
                # the same action again, after retryAfterMs. Dropping it would leave the table waiting on this
                # seat for its clock (and time bank).
                await asyncio.sleep(max(0, int(message.get("retryAfterMs", 50))) / 1000)
                if self._pending_turn is turn and self._last_action is not None:
                    await self.send(self._last_action)
            elif turn is not None and "action" in message:
                if "stale" in message.get("error", "") and not turn.get("retried"):
                    turn["retried"] = True
                    await self._act(turn)
                elif turn.get("safe"):
                    self._pending_turn = None  # the safe action refused too: the clock acts for this seat
                else:
                    # The policy asked for something the table refused: the safe action instead (kept as the
                    # pending turn's, so a rate-limited refusal of it is sent again too).
                    turn["safe"] = True
                    safe = {"type": "action", "action": "check" if turn["legal"]["check"] else "fold", "seq": self.seq}
                    self._last_action = safe
                    await self.send(safe)

    async def _resume(self, snapshot: dict[str, Any]) -> None:
        """After (re)joining mid-hand: pick up the hole cards, and act if the hand waits for us."""
        hand = snapshot.get("hand")
        if not hand:
            return
        mine = [p for p in hand["players"] if p.get("userId") == self.player_id]
        if mine and mine[0]["hole_cards"]:
            self.cards = mine[0]["hole_cards"]
        if hand.get("legal_actions") and mine and hand.get("actor") == mine[0]["seat"]:
            turn = {"seq": snapshot["seq"], "legal": hand["legal_actions"]}
            self._pending_turn = turn
            await self._act(turn)

    async def _act(self, turn: dict[str, Any]) -> None:
        if self.think_s:
            await asyncio.sleep(self.think_s)
        action, amount = self.policy(turn["legal"], self.cards, self.rng)
        message: dict[str, Any] = {"type": "action", "action": action, "seq": self.seq}
        if amount is not None:
            message["amount"] = str(amount)
        self._last_action = message
        await self.send(message)
