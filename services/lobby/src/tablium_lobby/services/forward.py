"""Several worker processes in one lobby instance: a player's action goes to the sibling holding the table.

With ``TABLIUM_LOBBY_WORKERS`` > 1 the server runs that many processes, each a lease participant of its own
(``<family>.<pid>``, the family shared by the siblings: services/lease.py spreads the tables over them).
A socket lands on whichever process accepted it, so a table's players are spread over the siblings.
Any process may write any player's action (unfenced, under the table's row lock: ADR 0008), but only the
lease holder's runner has the table's hand in memory: an action written elsewhere takes the locked path
and makes the holder read the table again. So an action for a table a sibling holds is handed to that
sibling through Redis (the process's direct channel, services/hub.py); it acts on its warm cache,
publishes the commit to every process as any commit is, and answers with the refusal, if any, for the
socket. No answer within ``forward_timeout_s`` (the sibling died, or is stalled): the action is written
here as before. Either way it is committed at most once: every write moves the table from the ``seq``
the action answered, and a second attempt finds it moved and is refused as stale.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from typing import TYPE_CHECKING

import msgspec
import structlog
from prometheus_client import Counter

from tablium_lobby.domain.actions import ActionRefused

if TYPE_CHECKING:
    from tablium_lobby.services.dealer import Dealer
    from tablium_lobby.services.lease import Leases

log = structlog.get_logger("tablium.lobby.forward")
FORWARDED = Counter("tablium_lobby_forwarded_actions", "Actions handed to the sibling holding the table", ["outcome"])


class ActRequest(msgspec.Struct, kw_only=True):
    kind: str  # "act" (to the holder) or "done" (its answer)
    id: int
    origin: str  # the process to answer
    table: str = ""
    player: str = ""
    action: str = ""
    amount: int | None = None
    seq: int = 0
    refused: str | None = None  # in "done": the refusal to send to the socket (None: accepted)
    failed: bool = False  # in "done": it could not be recorded (the socket is told to try again)


_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(ActRequest).decode


class ForwardFailed(Exception):
    """The holder could not record the action (not a refusal: the client may try again)."""


def family_of(instance: str) -> str:
    """The instance a worker process belongs to (its siblings share it): the part before the last dot."""
    return instance.rpartition(".")[0]


class Forwarder:
    def __init__(self, dealer: Dealer, leases: Leases, timeout_s: float) -> None:
        self.dealer = dealer
        self.leases = leases
        self.instance = leases.instance
        self.family = family_of(self.instance)
        self.timeout_s = timeout_s
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[ActRequest]] = {}
        self._holders: dict[uuid.UUID, tuple[str | None, float]] = {}  # table -> (sibling holding it, until)
        self._tasks: set[asyncio.Task[None]] = set()
        dealer.hub.on_direct = self.on_direct

    async def sibling_holding(self, table_id: uuid.UUID) -> str | None:
        """The sibling process holding the table's lease, if one does (cached for a lease renewal)."""
        now = time.monotonic()
        cached = self._holders.get(table_id)
        if cached is not None and cached[1] > now:
            return cached[0]
        value = await self.leases.holder(table_id)
        holder = value.split(":", 1)[0] if value else None
        sibling = holder if holder and holder != self.instance and family_of(holder) == self.family else None
        self._holders[table_id] = (sibling, now + self.dealer.settings.lease_renew_s)
        return sibling

    async def act(
        self, holder: str, table_id: uuid.UUID, player: str, action: str, amount: int | None, seq: int
    ) -> bool:
        """Hand the action to ``holder``; True once it answered (raising its refusal), False on no answer."""
        request_id = next(self._ids)
        future: asyncio.Future[ActRequest] = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = future
        request = ActRequest(
            kind="act", id=request_id, origin=self.instance, table=str(table_id), player=player, action=action,
            amount=amount, seq=seq,
        )  # fmt: skip
        self.dealer.hub.send_direct(holder, _encode(request))
        try:
            answer = await asyncio.wait_for(future, self.timeout_s)
        except TimeoutError:
            FORWARDED.labels("timeout").inc()
            self._holders.pop(table_id, None)  # look the holder up again next time
            log.warning("sibling did not answer; acting here", table=str(table_id), sibling=holder)
            return False
        finally:
            self._waiting.pop(request_id, None)
        if answer.failed:
            FORWARDED.labels("failed").inc()
            raise ForwardFailed("the action could not be recorded")
        FORWARDED.labels("refused" if answer.refused is not None else "accepted").inc()
        if answer.refused is not None:
            raise ActionRefused(answer.refused)
        return True

    def on_direct(self, data: bytes) -> None:
        """A message on this process's direct channel: a sibling's action to write, or an answer."""
        message = _decode(data)
        if message.kind == "done":
            future = self._waiting.get(message.id)
            if future is not None and not future.done():
                future.set_result(message)
        elif message.kind == "act":
            task = asyncio.create_task(self._act_for(message), name=f"forwarded-{message.table}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _act_for(self, request: ActRequest) -> None:
        answer = ActRequest(kind="done", id=request.id, origin=self.instance)
        try:
            runner = self.dealer.runner(uuid.UUID(request.table))
            await runner.act(request.player, request.action, request.amount, request.seq)
        except ActionRefused as exc:
            answer.refused = str(exc)
        except Exception:
            log.exception("forwarded action failed", table=request.table)
            answer.failed = True
        self.dealer.hub.send_direct(request.origin, _encode(answer))
