"""The table WebSocket (protocol v1, docs/events/lobby-table-protocol.yaml) and hydration."""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
import time
import uuid
from typing import Any
from uuid import UUID

import msgspec
import structlog
from litestar import Controller, WebSocket, get, websocket
from litestar.datastructures import State
from litestar.exceptions import WebSocketDisconnect
from litestar.params import FromPath

from tablium_kit.auth import BEARER, authenticated_or, caller
from tablium_kit.errors import Forbidden, NotFound, ProblemError
from tablium_kit.money import POSITIVE_AMOUNT_PATTERN, parse_amount
from tablium_kit.net import request_context
from tablium_lobby.domain.protocol import PROTOCOL_VERSION
from tablium_lobby.services import rejoin
from tablium_lobby.services.dealer import ActionRefused, Dealer
from tablium_lobby.services.hub import Connection
from tablium_lobby.services.hydration import table_state
from tablium_lobby.services.runtime import SeatingDep
from tablium_lobby.services.seating import Seating
from tablium_lobby.services.stages import ActionClock
from tablium_lobby.services.tickets import SUBPROTOCOL, offered_subprotocols, ticket_caller

log = structlog.get_logger("tablium.lobby.ws")


class ClientMessage(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    type: str
    action: str | None = None
    amount: str | None = None
    seq: int | None = None


_decode = msgspec.json.Decoder(ClientMessage).decode
_encode_error = msgspec.json.Encoder().encode
_AMOUNT = re.compile(POSITIVE_AMOUNT_PATTERN)
# Messages refused by the rate limit before the socket is closed (a client out of control). Only a message
# that came before the retry time the last refusal gave counts: a client that waits retryAfterMs each time
# is pacing itself, however long it plays at the limit. The count starts again only once the client let the
# bucket refill by half: a token trickling in between refusals (the server reading slower than the flood
# comes, on a busy machine) does not make a flood a burst.
FLOOD_LIMIT = 100


def _error(message: str, **extra: Any) -> dict[str, Any]:
    return {"type": "error", "error": message, **extra}


class _Bucket:
    """A token bucket: at most ``rate`` messages a second, bursts of ``rate`` (a flood is refused, not queued)."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.tokens = rate
        self.at = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.rate, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True

    def wait_ms(self) -> int:
        """How long until the next message would be let in (after a refusal)."""
        return max(1, math.ceil((1 - self.tokens) / self.rate * 1000))


def _refused_action(raw: str | bytes, max_bytes: int) -> str | None:
    """The action a message refused unread by the rate limit carried, if it was one (its sender must hear
    which action was not taken, or it waits for a turn that will never be answered)."""
    if len(raw) > max_bytes:
        return None
    try:
        message = _decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    return message.action[:20] if message.type == "action" and message.action else None


@websocket(
    "/api/v1/tables/{table_id:uuid}/ws",
    # The JWT in Authorization (bots, native clients) or a single-use ticket (browsers: services/tickets.py).
    guards=[authenticated_or(ticket_caller)],
    opt={"security_schemes": ["BearerToken"]},
)
async def table_socket(socket: WebSocket[Any, Any, Any], table_id: FromPath[UUID]) -> None:
    try:
        await _serve(socket, table_id)
    except Exception:
        log.exception("table socket failed", table=str(table_id))
        raise


async def _serve(socket: WebSocket[Any, Any, Any], table_id: UUID) -> None:
    state: State = socket.app.state
    dealer: Dealer = state.dealer
    seating: Seating = state.seating
    settings = seating.settings
    player = caller().subject
    connection = _Watcher(socket, table_id, player)
    # Joined before the read: anything committed later reaches the socket too, held until the snapshot
    # is queued (clients drop what is stale).
    await dealer.hub.join(connection)
    try:
        snapshot = await table_state(seating.sessions, table_id, player, check=True)
    except (NotFound, Forbidden) as exc:
        dealer.hub.leave(connection)
        await connection.close()
        if isinstance(exc, NotFound):
            await socket.close(code=4404, reason="no such table")
        else:
            await socket.close(code=4403, reason="a private table: not a member")
        return
    offered = offered_subprotocols(socket)
    await socket.accept(subprotocols=SUBPROTOCOL if SUBPROTOCOL in offered else None)
    connection.reader = asyncio.current_task()
    mine = next((p for p in snapshot["players"] if p["userId"] == player), None)
    ack = {"type": "join-ack", "version": PROTOCOL_VERSION, "userId": player, "role": snapshot["role"]}
    ack |= {"seat": mine["seat"] if mine is not None else None, "resumed": False}
    if mine is not None:
        ack["resumed"] = await _resume(connection, seating, table_id, player)
        # After the accept, in a transaction of its own: the insert's foreign key waits for a table row
        # lock, and a handshake must not wait behind a stalled writer.
        ack["rejoinToken"] = await rejoin.issue(seating.sessions, table_id, UUID(player), settings.rejoin_ttl_s)
    connection.send({**ack, "seq": snapshot["seq"]})
    connection.send(snapshot)
    dealer.hub.snapshot_sent(connection, snapshot["seq"])
    if mine is not None:
        dealer.player_connected(table_id, player, sitting_out=mine["sittingOut"])
    bucket = _Bucket(settings.ws_messages_per_s)
    refused = 0  # refusals in a run (of one, only the first is answered when it is not an action)
    ignored = 0  # refused messages that came before the retry time the previous refusal gave
    retry_at = 0.0
    try:
        while not connection.closed.is_set():
            try:
                # A timeout scope, not wait_for (which wraps every receive in a task of its own).
                async with asyncio.timeout(settings.ws_idle_timeout_s):
                    raw = await socket.receive_data(mode="text")
                received = time.time()
            except TimeoutError:
                connection.send(_error("idle for too long; closing"))
                break
            if not bucket.take():
                refused += 1
                if bucket.at < retry_at:
                    ignored += 1
                    if ignored > FLOOD_LIMIT:
                        connection.send(_error("flooding; closing"))
                        break
                retry_after_ms = bucket.wait_ms()
                retry_at = bucket.at + retry_after_ms / 1000
                # Every refused action is answered as one (the protocol's `action` and a code to send it again
                # after retryAfterMs): a client acting on its turns faster than the limit (a bot, heads-up) must
                # learn its action was not taken. Anything else: the first refusal only.
                action = _refused_action(raw, settings.ws_max_message_bytes)
                if refused == 1:
                    log.info("socket over its message rate", table=str(table_id), player=player, action=action)
                if action is not None or refused == 1:
                    error = _error("too many messages; slow down", code="rate-limited", retryAfterMs=retry_after_ms)
                    connection.send(error if action is None else {**error, "action": action})
                continue
            if bucket.tokens >= bucket.rate / 2:
                refused = ignored = 0
            if len(raw) > settings.ws_max_message_bytes:
                connection.send(_error(f"message larger than {settings.ws_max_message_bytes} bytes"))
                continue
            try:
                message = _decode(raw)
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                connection.send(_error(f"malformed message: {str(exc)[:200]}"))
                continue
            await _handle(connection, message, dealer, seating, table_id, player, received)
    except WebSocketDisconnect:
        pass
    except asyncio.CancelledError:
        if not connection.removed:
            raise
        # Our own cancellation (the player was removed from a private table): the socket closes below.
        current = asyncio.current_task()
        if current is not None:
            current.uncancel()
    finally:
        dealer.hub.leave(connection)
        await connection.close()
        dealer.player_disconnected(table_id, player)
        if socket.connection_state != "disconnect":
            try:
                await socket.close(code=4403 if connection.removed else 1000)
            except Exception:  # already gone
                log.debug("socket already closed")


async def _resume(connection: Connection, seating: Seating, table_id: UUID, player: str) -> bool:
    """Spend the rejoin token the socket came with, if any; a refused one is an ``error``, then a fresh join."""
    request = request_context.get()
    token = request.query_credentials.get("rejoin") if request is not None else None
    if token is None:
        return False
    try:
        await rejoin.redeem(seating.sessions, token, table_id, UUID(player))
    except rejoin.RejoinRefused as exc:
        connection.send(_error(f"rejoin token refused: {exc}", code="rejoin-refused"))
        return False
    return True


class _Watcher(Connection):
    """A socket that closes itself once its player is kicked from a private table (after the hand's
    cash-out if the player was dealt in): a kicked player neither plays nor watches."""

    kicked = False
    removed = False
    closer: asyncio.Task[None] | None = None
    reader: asyncio.Task[Any] | None = None  # the task serving the socket

    def push(self, data: bytes, seq: int | None = None) -> None:
        super().push(data, seq)
        if b'"player-kicked"' in data or (self.kicked and b'"player-left"' in data):
            message = msgspec.json.decode(data)
            if message.get("userId") != self.player_id:
                return
            if message["type"] == "player-kicked" and message.get("afterHand"):
                self.kicked = True
            else:
                super().push(_encode_error(_error("you were removed from this private table; closing")))
                self.closer = asyncio.create_task(self._close_removed(), name=f"ws-kicked-{self.player_id}")

    async def _close_removed(self) -> None:
        """Let the writer send what is queued, then stop the socket's reader (which closes the socket)."""
        with contextlib.suppress(asyncio.QueueFull):
            self.queue.put_nowait(None)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.shield(self.writer), 1.0)
        self.removed = True
        if self.reader is not None:
            self.reader.cancel()


async def _handle(
    connection: Connection,
    message: ClientMessage,
    dealer: Dealer,
    seating: Seating,
    table_id: UUID,
    player: str,
    received: float,
) -> None:
    kind = message.type
    if kind == "heartbeat":
        connection.send({"type": "heartbeat"})
    elif kind == "rejoin-token":
        seated = await table_state(seating.sessions, table_id, player)
        if not any(p["userId"] == player for p in seated["players"]):
            connection.send(_error("only a seated player gets a rejoin token"))
            return
        token = await rejoin.issue(seating.sessions, table_id, UUID(player), seating.settings.rejoin_ttl_s)
        connection.send({"type": "rejoin-token", "rejoinToken": token, "expiresInS": seating.settings.rejoin_ttl_s})
    elif kind == "snapshot":
        connection.hold()  # what commits while the snapshot is read follows it, never precedes it
        snapshot = await table_state(seating.sessions, table_id, player)
        connection.send(snapshot)
        dealer.hub.snapshot_sent(connection, snapshot["seq"])
    elif kind == "action":
        if message.action is None or message.seq is None:
            connection.send(_error("an action needs 'action' and the 'seq' it answers"))
            return
        amount: int | None = None
        if message.amount is not None:
            if _AMOUNT.search(message.amount) is None:
                connection.send(_error("amount must be a decimal string of a positive integer"))
                return
            try:
                amount = parse_amount(message.amount)
            except ProblemError as exc:
                connection.send(_error(exc.detail))
                return
        try:
            # Shielded: a socket closing mid-write must not cancel a commit before its broadcast (the
            # other players would miss an action that happened).
            clock = ActionClock(received)
            await asyncio.shield(dealer.act(table_id, player, message.action, amount, message.seq, clock))
        except ActionRefused as exc:
            connection.send(_error(str(exc), action=message.action))
        except Exception:
            log.exception("action failed", table=str(table_id))
            # Named, so the client sends it again (a second copy of one that did commit is refused as stale).
            connection.send(_error("the action could not be recorded; try again", action=message.action, code="retry"))
    elif kind == "leave":
        try:
            result = await seating.leave(table_id, uuid.UUID(player))
        except ProblemError as exc:
            connection.send(_error(exc.detail))
            return
        except ValueError:
            connection.send(_error("only players have seats"))
            return
        connection.send({"type": "leave-ack", "status": result.status, "cashedOut": str(result.cashed_out)})
    else:
        connection.send(_error(f"unknown message type {kind[:40]!r}"))


class StateController(Controller):
    path = "/api/v1/tables"
    tags = ["play"]
    security = BEARER

    @get("/{table_id:uuid}/state", summary="The table's full state as the caller may see it, with its seq")
    async def state(self, table_id: FromPath[UUID], seating: SeatingDep) -> dict[str, Any]:
        return await table_state(seating.sessions, table_id, caller().subject, check=True)
