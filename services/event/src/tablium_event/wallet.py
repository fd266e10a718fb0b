"""The wallet's internal API, as the event service uses it. Every id and key is deterministic,
so any step can be retried (by a request or by the reconciler) without acting twice."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import httpx

from tablium_kit.auth import ServiceTokens
from tablium_kit.errors import Conflict, ProblemError
from tablium_kit.internal import InternalClient, UpstreamError
from tablium_kit.money import format_amount

# uuid5 namespace of every transfer id the event service makes.
NAMESPACE = uuid.UUID("6f1c7e0a-3b0e-5b7e-9c59-7a1e0b7c2d11")
INSUFFICIENT_FUNDS = "urn:tablium:problem:insufficient-funds"
LIMIT_EXCEEDED = "urn:tablium:problem:limit-exceeded"


def transfer_id(tournament_id: uuid.UUID, *parts: object) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, ":".join([str(tournament_id), *map(str, parts)]))


class PaymentRefused(ProblemError):
    status_code = 409
    title = "Payment refused"
    slug = "payment-refused"


class Wallet:
    def __init__(
        self, base_url: str, tokens: ServiceTokens, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.client = InternalClient("wallet", base_url, tokens, transport=transport)

    async def aclose(self) -> None:
        await self.client.aclose()

    async def open_account(self, owner: str, kind: str, asset: str) -> uuid.UUID:
        body = {"owner": owner, "kind": kind, "asset": asset}
        account = await self.client.request(
            "PUT", "/internal/v1/accounts", json=body, idempotency_key=f"open:{owner}:{kind}:{asset}"
        )
        return uuid.UUID(account["id"])

    async def transfer(
        self,
        id: uuid.UUID,
        *,
        debit: uuid.UUID,
        credit: uuid.UUID,
        amount: int,
        asset: str,
        code: str,
        pending: bool = False,
        timeout_s: int | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        body = {
            "id": str(id),
            "debit_account_id": str(debit),
            "credit_account_id": str(credit),
            "amount": format_amount(amount),
            "asset": asset,
            "code": code,
            "pending": pending,
            "timeout_s": timeout_s,
            "metadata": metadata or {},
        }
        try:
            result: dict[str, Any] = await self.client.request(
                "POST", "/internal/v1/transfers", json=body, idempotency_key=str(id)
            )
        except UpstreamError as exc:
            if exc.problem.get("type") in (INSUFFICIENT_FUNDS, LIMIT_EXCEEDED):
                raise PaymentRefused(exc.upstream_detail, extra={"reason": exc.problem.get("type")}) from exc
            raise
        return result

    async def transfers(self, transfers: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """Independent posted transfers in one request (``/transfers/batch``, at most 256), each replayed
        by its id. Each item has the arguments of ``transfer``; any refused one raises, as alone."""
        body = {
            "transfers": [
                {
                    "id": str(t["id"]),
                    "debit_account_id": str(t["debit"]),
                    "credit_account_id": str(t["credit"]),
                    "amount": format_amount(t["amount"]),
                    "asset": t["asset"],
                    "code": t["code"],
                    "metadata": t.get("metadata") or {},
                }
                for t in transfers
            ]
        }
        # The ids make it idempotent; the key names this exact set, so a retry replays it.
        key = "batch:" + str(uuid.uuid5(NAMESPACE, ",".join(item["id"] for item in body["transfers"])))
        answer = await self.client.request("POST", "/internal/v1/transfers/batch", json=body, idempotency_key=key)
        results: list[dict[str, Any]] = []
        for result in answer["results"]:
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

    async def post(self, id: uuid.UUID) -> dict[str, Any]:
        return await self._resolve(id, "post", {"amount": None})

    async def void(self, id: uuid.UUID) -> dict[str, Any]:
        return await self._resolve(id, "void", None)

    async def balance(self, account: uuid.UUID) -> int:
        """The account's posted balance (what it holds; pending holds excluded)."""
        result = await self.client.request("GET", f"/internal/v1/accounts/{account}")
        return int(result["balance"]["available"])

    async def get_transfer(self, id: uuid.UUID) -> dict[str, Any] | None:
        try:
            result: dict[str, Any] = await self.client.request("GET", f"/internal/v1/transfers/{id}")
        except UpstreamError as exc:
            if exc.status == 404:
                return None
            raise
        return result

    async def _resolve(self, id: uuid.UUID, action: str, body: dict[str, Any] | None) -> dict[str, Any]:
        try:
            result: dict[str, Any] = await self.client.request(
                "POST", f"/internal/v1/transfers/{id}/{action}", json=body, idempotency_key=f"{action}:{id}"
            )
        except UpstreamError as exc:
            if exc.status == 409:
                # Already resolved the other way (or expired): report what it is now.
                current = await self.get_transfer(id)
                if current is not None:
                    return current
                raise Conflict(exc.upstream_detail) from exc
            raise
        return result
