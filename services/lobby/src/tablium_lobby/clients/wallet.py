"""The wallet's internal API, as the lobby uses it.

Every transfer id derives from the lobby row that records the intent (a chip movement, a hand), so a
call repeated by the request or by the reconciler acts once.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tablium_kit.auth import ServiceTokens
from tablium_kit.internal import InternalClient, UpstreamError
from tablium_kit.money import format_amount

# uuid5 namespace of every transfer id the lobby makes.
NAMESPACE = uuid.UUID("b7f0e4d2-6a1c-5e39-8d4b-2c9a71e0f5a3")
REFUSALS = frozenset({"urn:tablium:problem:insufficient-funds", "urn:tablium:problem:limit-exceeded"})


def transfer_id(*parts: object) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, ":".join(map(str, parts)))


class PaymentRefused(Exception):
    """The wallet refused the transfer for good (funds, a limit): the step is abandoned, not retried."""

    def __init__(self, detail: str, reason: str) -> None:
        super().__init__(detail)
        self.detail = detail
        self.reason = reason


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
            kind = exc.problem.get("type")
            if kind in REFUSALS:
                raise PaymentRefused(exc.detail, str(kind)) from exc
            raise
        return result

    async def get_transfer(self, id: uuid.UUID) -> dict[str, Any] | None:
        try:
            result: dict[str, Any] = await self.client.request("GET", f"/internal/v1/transfers/{id}")
        except UpstreamError as exc:
            if exc.status == 404:
                return None
            raise
        return result

    async def post(self, id: uuid.UUID) -> dict[str, Any]:
        """Post a pending transfer in full; if it was resolved already (voided, expired), what it is now."""
        try:
            result: dict[str, Any] = await self.client.request(
                "POST", f"/internal/v1/transfers/{id}/post", json={"amount": None}, idempotency_key=f"post:{id}"
            )
        except UpstreamError as exc:
            if exc.status == 409:
                current = await self.get_transfer(id)
                if current is not None:
                    return current
            raise
        return result

    async def void(self, id: uuid.UUID) -> dict[str, Any]:
        try:
            result: dict[str, Any] = await self.client.request(
                "POST", f"/internal/v1/transfers/{id}/void", idempotency_key=f"void:{id}"
            )
        except UpstreamError as exc:
            if exc.status == 409:
                current = await self.get_transfer(id)
                if current is not None:
                    return current
            raise
        return result
