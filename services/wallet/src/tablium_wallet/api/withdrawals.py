"""The blockchain service's route: hold a player's money for an on-chain withdrawal (internal only)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated
from uuid import UUID

import msgspec
from litestar import Controller, Response, post
from litestar.datastructures import State
from litestar.params import JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from tablium_kit.auth import from_services
from tablium_kit.deps import DbSession
from tablium_kit.inputs import exact
from tablium_kit.money import PositiveAmount, parse_amount
from tablium_wallet.api.internal import internal_caller
from tablium_wallet.api.schemas import AssetCode, Request, TransferOut, transfer_out
from tablium_wallet.domain.assets import check_asset
from tablium_wallet.services.withdrawals import hold_withdrawal
from tablium_wallet.settings import WalletSettings


class WithdrawalHoldRequest(Request):
    withdrawal_id: UUID
    player_id: UUID
    chain_id: Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]
    asset: AssetCode
    amount: PositiveAmount
    # Where the money goes on chain (kept on the hold for the audit trail).
    address: Annotated[str, msgspec.Meta(pattern=exact("0x[0-9a-fA-F]{40}"))]


class WithdrawalHoldController(Controller):
    path = "/internal/v1/withdrawals"
    tags = ["internal"]
    security = from_services("blockchain")
    guards = [internal_caller]

    @post(
        "/holds",
        summary="Hold a player's money for a withdrawal (a pending transfer to chain clearing); a replay gets it",
    )
    async def hold(
        self, data: JSONBody[WithdrawalHoldRequest], db_session: DbSession, state: State
    ) -> Response[TransferOut]:
        settings: WalletSettings = state.settings
        check_asset(data.asset)
        transfer, created = await hold_withdrawal(
            db_session,
            withdrawal_id=data.withdrawal_id,
            player_id=data.player_id,
            chain_id=data.chain_id,
            asset=data.asset,
            amount=parse_amount(data.amount),
            address=data.address.lower(),
            daily_limit=settings.daily_withdrawal_limit.get(data.asset),
            now=datetime.now(UTC),
        )
        return Response(transfer_out(transfer), status_code=HTTP_201_CREATED if created else HTTP_200_OK)
