"""The wallet's internal API, as the event service uses it. Every id and key is deterministic,
so any step can be retried (by a request or by the reconciler) without acting twice."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from tablium_kit.errors import Conflict
from tablium_kit.internal import UpstreamError
from tablium_kit.wallet import PaymentRefused, WalletClient

# uuid5 namespace of every transfer id the event service makes.
NAMESPACE = uuid.UUID("6f1c7e0a-3b0e-5b7e-9c59-7a1e0b7c2d11")


__all__ = ["NAMESPACE", "PaymentRefused", "Wallet", "transfer_id"]


def transfer_id(tournament_id: uuid.UUID, *parts: object) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, ":".join([str(tournament_id), *map(str, parts)]))


class Wallet(WalletClient):
    """The kit's wallet client, with the batch calls a tournament start and its payouts make."""

    async def transfers(self, transfers: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """Independent posted transfers in one request (``/transfers/batch``, at most 256), each replayed
        by its id. Each item has the arguments of ``transfer``; any refused one raises, as alone."""
        answer = await self.transfer_batch(transfers, key_prefix="batch", namespace=NAMESPACE)
        results: list[dict[str, Any]] = []
        for result in answer:
            if result["status"] >= 400:
                raise UpstreamError("wallet", result["status"], result.get("problem") or {})
            results.append(result["transfer"])
        return results

    async def post_many(self, ids: Sequence[uuid.UUID]) -> list[dict[str, Any]]:
        """Post many pending transfers in one request (``/transfers/resolutions``, at most 256); each
        answer is the transfer as it is now, as ``post`` reports it (posted, or voided/expired if it was
        resolved the other way). Any other refusal raises, as alone."""
        body = {"resolutions": [{"pending_id": str(id), "action": "post"} for id in ids]}
        key = "post:" + str(uuid.uuid5(NAMESPACE, ",".join(map(str, ids))))
        answer = await self.client.request("POST", "/internal/v1/transfers/resolutions", json=body, idempotency_key=key)
        results: list[dict[str, Any]] = []
        for id, result in zip(ids, answer["results"], strict=True):
            if result["status"] == 409:  # already resolved the other way (or expired): what it is now
                current = await self.get_transfer(id)
                if current is None:
                    raise Conflict(result.get("problem", {}).get("detail", f"transfer {id} is resolved"))
                results.append(current)
            elif result["status"] >= 400:
                raise UpstreamError("wallet", result["status"], result.get("problem") or {})
            else:
                results.append(result["transfer"])
        return results
