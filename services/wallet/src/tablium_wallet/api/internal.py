"""The internal API other services code against (service tokens only; never routed by the gateway).

Who may call it: the event service (buy-ins, prizes) and the lobby (seats, hands). Services to come
get routes of their own for what they do (the blockchain service's withdrawals, the rakeback
service's payouts), each naming that service alone, rather than these general transfers; deposits
arrive as ``blockchain.deposit_confirmed`` events, not over this API.

Every POST and PUT must carry an ``Idempotency-Key``. The operations are idempotent by their own
keys (the transfer id; the account's owner, kind and asset; the pending transfer posted or voided),
so a retry with the same body returns the first result.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import Controller, Response, get, post, put
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from tablium_kit.auth import authenticated, from_services
from tablium_kit.deps import DbSession
from tablium_kit.errors import ProblemError
from tablium_wallet.api.schemas import (
    AccountOut,
    BatchOut,
    BatchRequest,
    LinkedOut,
    LinkedRequest,
    OpenAccountRequest,
    PostRequest,
    ResolutionsRequest,
    TransferOut,
    TransferRequest,
    account_out,
    batch_result,
    resolution_result,
    transfer_out,
)
from tablium_wallet.services.accounts import find_accounts, get_account, open_account
from tablium_wallet.services.history import get_transfer
from tablium_wallet.services.runtime import LedgerDep
from tablium_wallet.services.transfers import Linked, Resolve


class IdempotencyKeyRequired(ProblemError):
    title = "Idempotency-Key required"
    slug = "idempotency-key-required"


async def internal_caller(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """A service token from a service the controller names, and an Idempotency-Key on POST and PUT.

    One guard, and a coroutine: Litestar runs a synchronous guard in a worker thread, which cost more
    than the whole ledger's share of a transfer request.
    """
    await authenticated(connection, handler)  # first: no token is a 401, whatever the headers
    if connection.scope.get("method") in ("POST", "PUT") and not connection.headers.get("idempotency-key"):
        raise IdempotencyKeyRequired("internal POST and PUT requests need an Idempotency-Key header")


def _status(created: bool) -> int:
    return HTTP_201_CREATED if created else HTTP_200_OK


class InternalController(Controller):
    path = "/internal/v1"
    tags = ["internal"]
    security = from_services("event", "lobby")
    guards = [internal_caller]

    @put("/accounts", status_code=HTTP_200_OK, summary="Open an account (or get the open one)")
    async def open_account(self, data: JSONBody[OpenAccountRequest], db_session: DbSession) -> AccountOut:
        return account_out(await open_account(db_session, owner=data.owner, kind=data.kind, asset=data.asset))

    @get("/accounts/{account_id:uuid}", summary="An account and its balance")
    async def get_account(self, account_id: FromPath[UUID], db_session: DbSession) -> AccountOut:
        return account_out(await get_account(db_session, account_id))

    @get("/accounts", summary="An owner's accounts")
    async def find_accounts(
        self, owner: FromQuery[str], db_session: DbSession, asset: FromQuery[str | None] = None
    ) -> list[AccountOut]:
        return [account_out(a) for a in await find_accounts(db_session, owner=owner, asset=asset)]

    @post("/transfers", summary="Create a transfer (posted, or pending: a hold)")
    async def create_transfer(self, data: JSONBody[TransferRequest], ledger: LedgerDep) -> Response[TransferOut]:
        result = await ledger.submit(data.to_operation())
        return Response(transfer_out(result.transfers[0]), status_code=_status(result.created))

    @post("/transfers/linked", summary="Create transfers that commit all together or not at all")
    async def create_linked(self, data: JSONBody[LinkedRequest], ledger: LedgerDep) -> Response[LinkedOut]:
        result = await ledger.submit(Linked(tuple(t.to_operation() for t in data.transfers)))
        return Response(
            LinkedOut(transfers=[transfer_out(t) for t in result.transfers]), status_code=_status(result.created)
        )

    @post(
        "/transfers/batch",
        status_code=HTTP_200_OK,
        summary="Create many independent transfers at once; each is made or refused on its own",
    )
    async def create_batch(self, data: JSONBody[BatchRequest], ledger: LedgerDep) -> BatchOut:
        # What TigerBeetle's clients do: one request, one round of the batcher, for many transfers
        # (a hand's settlement, a tournament's payouts). Unlike /linked, one refusal fails only itself.
        outcomes = await ledger.submit_many([t.to_operation() for t in data.transfers])
        return BatchOut(results=[batch_result(outcome) for outcome in outcomes])

    @post(
        "/transfers/resolutions",
        status_code=HTTP_200_OK,
        summary="Post or void many pending transfers at once; each is resolved or refused on its own",
    )
    async def resolve_batch(self, data: JSONBody[ResolutionsRequest], ledger: LedgerDep) -> BatchOut:
        # The batch endpoint's counterpart for holds (a tournament's entries posted at its start): one
        # request, one round of the batcher; each resolution is what /transfers/{id}/post|void would do.
        outcomes = await ledger.submit_many([r.to_operation() for r in data.resolutions])
        return BatchOut(results=[resolution_result(outcome) for outcome in outcomes])

    @get("/transfers/{transfer_id:uuid}", summary="A transfer and its status")
    async def get_transfer(self, transfer_id: FromPath[UUID], db_session: DbSession) -> TransferOut:
        return transfer_out(await get_transfer(db_session, transfer_id))

    @post("/transfers/{transfer_id:uuid}/post", status_code=HTTP_200_OK, summary="Post a pending transfer")
    async def post_pending(
        self, transfer_id: FromPath[UUID], data: JSONBody[PostRequest], ledger: LedgerDep
    ) -> TransferOut:
        result = await ledger.submit(data.to_operation(transfer_id))
        return transfer_out(result.transfers[0])

    @post("/transfers/{transfer_id:uuid}/void", status_code=HTTP_200_OK, summary="Void a pending transfer")
    async def void_pending(self, transfer_id: FromPath[UUID], ledger: LedgerDep) -> TransferOut:
        result = await ledger.submit(Resolve(transfer_id, "void"))
        return transfer_out(result.transfers[0])
