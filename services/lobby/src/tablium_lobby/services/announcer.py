"""Seat offers announced to the offered player's sockets, wherever they are connected.

A player waiting for a seat may be watching or playing at any table, on any instance: an announcement
goes to one Redis channel every instance listens to, and each instance delivers it to that player's
sockets it serves. Best effort: the offer stands in Postgres and is listed by REST either way.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import msgspec
import structlog
from redis.asyncio import Redis

from tablium_lobby.db.waiting import SeatOffer
from tablium_lobby.services.hub import Hub

log = structlog.get_logger("tablium.lobby.announcer")
_encode = msgspec.json.Encoder().encode


class Announcer:
    def __init__(self, hub: Hub | None, redis: Redis | None, prefix: str) -> None:
        self.hub = hub
        self.redis = redis
        self.channel = f"{prefix}:players"

    async def announce(self, offer: SeatOffer, small_blind: str, big_blind: str, ante: str, seats: int) -> None:
        message = {
            "type": "seat-offer",
            "offerId": str(offer.id),
            "tableId": str(offer.table_id),
            "seat": offer.seat_no,
            "expiresAt": int(offer.expires_at.timestamp() * 1000),
            "smallBlind": small_blind,
            "bigBlind": big_blind,
            "ante": ante,
            "seats": seats,
        }
        payload = {"player": str(offer.player_id), "message": message}
        if self.redis is None:
            self.deliver(payload)
            return
        try:
            await self.redis.publish(self.channel, _encode(payload))
        except Exception:  # the offer stands in the database; the player sees it by REST
            log.warning("offer announcement failed", offer=str(offer.id))

    def deliver(self, payload: dict[str, Any]) -> None:
        """To this process's sockets of the player, at every table."""
        if self.hub is None:
            return
        for connections in list(self.hub.tables.values()):
            for connection in list(connections):
                if connection.player_id == payload["player"]:
                    connection.send(payload["message"])

    async def listen(self) -> None:
        assert self.redis is not None
        pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(self.channel)
        try:
            while True:
                try:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                except Exception:
                    log.warning("offer channel read failed; retrying")
                    await asyncio.sleep(0.5)
                    continue
                if message is not None and message.get("type") == "message":
                    data = message["data"]
                    self.deliver(msgspec.json.decode(data.encode() if isinstance(data, str) else data))
        finally:
            with contextlib.suppress(Exception):
                await pubsub.aclose()
