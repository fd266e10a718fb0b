"""Rejoin tokens: a seated player's proof that a new socket resumes the seat of a dropped one.

What they mean here: the JWT (or a WebSocket ticket) remains the identity of every socket. A seated
player's ``join-ack`` carries a ``rejoinToken`` (random, 256 bits; Postgres keeps only its SHA-256, with
the player, the table and an expiry of ``rejoin_ttl_s``). After a drop the client reconnects with
``?rejoin=<token>``: if the token is the caller's, for this table, unexpired and unused, it is spent (one
``UPDATE … WHERE used_at IS NULL``: a replay or a race finds it spent), the socket resumes (``join-ack``
with ``resumed: true``: same seat, sat back in) and a new token comes with it (rotated on each use).
Any other token is refused with an ``error`` (``code: rejoin-refused``) and the socket joins as a fresh
one. The kit takes ``rejoin`` out of the query string before anything can trace or log it.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tablium_lobby.db.models import RejoinToken


class RejoinRefused(Exception):
    pass


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


async def issue(
    sessions: async_sessionmaker[AsyncSession], table_id: uuid.UUID, player_id: uuid.UUID, ttl_s: int
) -> str:
    async with sessions.begin() as session:
        return add(session, table_id, player_id, ttl_s)


def add(session: AsyncSession, table_id: uuid.UUID, player_id: uuid.UUID, ttl_s: int) -> str:
    """A new token, written with the caller's transaction."""
    token = secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    session.add(
        RejoinToken(
            token_hash=_digest(token),
            table_id=table_id,
            player_id=player_id,
            expires_at=now + timedelta(seconds=ttl_s),
            created_at=now,
        )
    )
    return token


async def prune(sessions: async_sessionmaker[AsyncSession], ttl_s: int) -> None:
    """Spent and expired tokens are kept no longer than needed to refuse them with a reason (the
    reconciler's pass: one statement for every player, off the connect path)."""
    async with sessions.begin() as session:
        await session.execute(
            delete(RejoinToken).where(RejoinToken.expires_at < datetime.now(UTC) - timedelta(seconds=ttl_s))
        )


async def redeem(
    sessions: async_sessionmaker[AsyncSession], token: str, table_id: uuid.UUID, player_id: uuid.UUID
) -> None:
    """Spend ``token`` for ``player_id`` at ``table_id``, or raise :class:`RejoinRefused` saying why."""
    if not 16 <= len(token) <= 128:
        raise RejoinRefused("malformed rejoin token")
    now = datetime.now(UTC)
    async with sessions.begin() as session:
        spent = await session.execute(
            update(RejoinToken)
            .where(
                RejoinToken.token_hash == _digest(token),
                RejoinToken.table_id == table_id,
                RejoinToken.player_id == player_id,
                RejoinToken.used_at.is_(None),
                RejoinToken.expires_at > now,
            )
            .values(used_at=now)
            .returning(RejoinToken.token_hash)
        )
        if spent.first() is not None:
            return
        found = await session.get(RejoinToken, _digest(token))
    if found is None:
        raise RejoinRefused("unknown rejoin token")
    if found.table_id != table_id or found.player_id != player_id:
        raise RejoinRefused("this rejoin token is for another table or player")
    if found.used_at is not None:
        raise RejoinRefused("this rejoin token was already used")
    raise RejoinRefused("this rejoin token has expired")
