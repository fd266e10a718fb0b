"""The wallet's internal API as every service calls it: open an account, transfer, post, void, read.

Callers choose deterministic transfer ids (uuid5 of the fact that moves the money) and the idempotency
keys derive from them, so a step repeated by a request or a reconciler acts once. A refusal the wallet
gives for good (funds, a limit) is :class:`PaymentRefused`; anything else stays the internal client's.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import httpx

from tablium_kit.auth import ServiceTokens
from tablium_kit.errors import Conflict, ProblemError
from tablium_kit.internal import InternalClient, UpstreamError
from tablium_kit.money import format_amount

REFUSALS = frozenset({"urn:tablium:problem:insufficient-funds", "urn:tablium:problem:limit-exceeded"})


class PaymentRefused(ProblemError):
    """The wallet refused a transfer for good: the step is abandoned (and answered 409), not retried."""

    status_code = 409
    title = "Payment refused"
    slug = "payment-refused"

    def __init__(self, detail: str, reason: str | None = None) -> None:
        super().__init__(detail, extra={"reason": reason} if reason else None)
        self.reason = reason


class WalletClient:
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
            kind = exc.problem.get("type")
            if kind in REFUSALS:
                raise PaymentRefused(exc.upstream_detail, str(kind)) from exc
            raise
        return result

    async def transfer_batch(
        self, transfers: Sequence[dict[str, Any]], *, key_prefix: str, namespace: uuid.UUID
    ) -> list[dict[str, Any]]:
        """Independent posted transfers in one request (``/transfers/batch``, at most 256), each replayed by its
        id; each item has the arguments of ``transfer``. The wallet's answer for each, in order: ``status``
        (201 made, 200 made before, 4xx refused), ``transfer`` or ``problem``. The ids make it idempotent; the
        key (``key_prefix`` and a uuid5 in the caller's ``namespace``) names this exact set, so a retry
        replays it."""
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
        key = f"{key_prefix}:" + str(uuid.uuid5(namespace, ",".join(item["id"] for item in body["transfers"])))
        answer = await self.client.request("POST", "/internal/v1/transfers/batch", json=body, idempotency_key=key)
        results: list[dict[str, Any]] = answer["results"]
        return results

    async def post(self, id: uuid.UUID) -> dict[str, Any]:
        """Post a pending transfer in full; if it was resolved already (voided, expired), what it is now."""
        return await self._resolve(id, "post", {"amount": None})

    async def void(self, id: uuid.UUID) -> dict[str, Any]:
        """Void a pending transfer; if it was resolved already (posted, expired), what it is now."""
        return await self._resolve(id, "void", None)

    async def balance(self, account: uuid.UUID) -> int:
        """The account's available balance (pending debits excluded)."""
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
