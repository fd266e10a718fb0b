"""A player's withdrawals: ask for one (with an Idempotency-Key), list them, see one."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated
from uuid import UUID

from litestar import Controller, Response, get, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, HeaderParameter, JSONBody, Parameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from tablium_blockchain.api.deposits import player_id
from tablium_blockchain.api.schemas import WithdrawalOut, WithdrawalRequest
from tablium_blockchain.services.runtime import ChainRuntimeDep
from tablium_blockchain.services.withdrawal_requests import my_withdrawal, my_withdrawals, request_withdrawal
from tablium_kit.auth import BEARER
from tablium_kit.deps import DbSession
from tablium_kit.inputs import exact
from tablium_kit.money import format_amount, parse_amount

if TYPE_CHECKING:  # the api layer only shapes rows the services return
    from tablium_blockchain.db.models import Withdrawal

IdempotencyKey = Annotated[
    str,
    HeaderParameter(
        name="Idempotency-Key",
        pattern=exact("[A-Za-z0-9._:-]{1,100}"),
        description="The client's key of this withdrawal: a retry with the same key is the same withdrawal",
    ),
]


def withdrawal_out(w: Withdrawal) -> WithdrawalOut:
    return WithdrawalOut(
        id=w.id,
        status=w.status,  # type: ignore[arg-type]
        asset=w.asset,  # type: ignore[arg-type]
        amount=format_amount(w.amount),
        address=w.address,
        chain_id=w.chain_id,
        tx_hash=w.landed_tx_hash or w.tx_hash,
        nonce=w.nonce,
        block_number=w.block_number,
        reason=w.reason,
        created_at=w.created_at,
        settled_at=w.settled_at,
    )


class WithdrawalController(Controller):
    path = "/api/v1/withdrawals"
    tags = ["withdrawals"]
    security = BEARER

    @post(
        summary="Withdraw to an address of mine: the money is held now and sent on chain",
        status_code=HTTP_201_CREATED,
        responses={200: ResponseSpec(data_container=WithdrawalOut, description="A replay: the withdrawal now")},
    )
    async def request(
        self, data: JSONBody[WithdrawalRequest], idempotency_key: IdempotencyKey, chain_runtime: ChainRuntimeDep
    ) -> Response[WithdrawalOut]:
        withdrawal, created = await request_withdrawal(
            chain_runtime.sessions,
            chain_runtime.connected(),
            chain_runtime.wallet,
            chain_runtime.settings,
            player_id=player_id(),
            idempotency_key=idempotency_key,
            asset=data.asset,
            address=data.address,
            amount=parse_amount(data.amount),
        )
        return Response(withdrawal_out(withdrawal), status_code=HTTP_201_CREATED if created else HTTP_200_OK)

    @get(summary="My withdrawals, newest first")
    async def mine(
        self, db_session: DbSession, limit: Annotated[int, Parameter(ge=1, le=100)] = 50
    ) -> list[WithdrawalOut]:
        return [withdrawal_out(w) for w in await my_withdrawals(db_session, player_id(), limit=limit)]

    @get("/{withdrawal_id:uuid}", summary="One of my withdrawals")
    async def one(self, withdrawal_id: FromPath[UUID], db_session: DbSession) -> WithdrawalOut:
        return withdrawal_out(await my_withdrawal(db_session, player_id(), withdrawal_id))
