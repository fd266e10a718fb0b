"""The rake of finished hands into the house rake account: many hands' transfers in one wallet request.

Every hand's end makes one rake transfer (the table's escrow → the house rake account, its id derived
from the hand). One HTTP request each cost the lobby more CPU than anything else of the hand's aftermath
(ADR 0012, seventh pass), so they go through the wallet's ``/transfers/batch``: a transfer is sent at
once when no request is in flight, and those that come while one is go together in the next (no window,
no timer, as the lanes' statements). Each transfer is made or refused on its own, as alone; a replay of
one already made (the reconciler's) is answered as made, by its id.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any

from tablium_lobby.clients.wallet import Wallet

MAX_BATCH = 100  # the wallet takes 256 a request, and 64 KiB of body: 100 of these are ~30 KB


class RakeBatcher:
    def __init__(self, wallet: Wallet) -> None:
        self.wallet = wallet
        self._queued: list[tuple[dict[str, Any], asyncio.Future[int]]] = []
        self._sender: asyncio.Task[None] | None = None

    async def transfer(
        self, id: uuid.UUID, *, debit: uuid.UUID, credit: uuid.UUID, amount: int, asset: str, metadata: dict[str, str]
    ) -> int:
        """Send one rake transfer (with whatever else is queued); its status as alone: 201 made, 200 made
        before, 4xx refused. Raises what the request raised (the wallet away: nothing known)."""
        item = {"id": id, "debit": debit, "credit": credit, "amount": amount, "asset": asset, "metadata": metadata}
        done: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._queued.append((item, done))
        if self._sender is None or self._sender.done():
            self._sender = asyncio.create_task(self._send_queued(), name="lobby-rake-batches")
        return await done

    async def _send_queued(self) -> None:
        while self._queued:
            batch, self._queued = self._queued[:MAX_BATCH], self._queued[MAX_BATCH:]
            try:
                statuses = await self.wallet.rakes([item for item, _ in batch])
            except Exception as exc:  # the request's failure is each caller's (none of them knows more)
                for _, done in batch:
                    if not done.done():
                        done.set_exception(exc)
                continue
            for (_, done), status in zip(batch, statuses, strict=True):
                if not done.done():  # a caller cancelled meanwhile: its transfer stands, settled later
                    done.set_result(status)

    async def stop(self) -> None:
        if self._sender is not None:
            self._sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._sender
