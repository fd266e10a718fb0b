"""Admin credits and debits (role ``admin``), each with a mandatory reason and an audit entry."""

from __future__ import annotations

import uuid
from typing import Literal

from litestar import Controller, Response, post
from litestar.params import JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from tablium_kit.auth import BEARER, caller, requires_roles
from tablium_kit.deps import DbSession
from tablium_kit.money import parse_amount
from tablium_wallet.api.schemas import AdjustRequest, TransferOut, transfer_out
from tablium_wallet.services.admin import adjust


class AdminWalletController(Controller):
    path = "/api/v1/admin/wallet"
    tags = ["admin"]
    security = BEARER
    guards = [requires_roles("admin")]

    async def _adjust(
        self, action: Literal["credit", "debit"], data: AdjustRequest, db_session: DbSession
    ) -> Response[TransferOut]:
        record, created = await adjust(
            db_session,
            actor=caller().subject,
            action=action,
            player_id=data.player_id,
            asset=data.asset,
            amount=parse_amount(data.amount),
            reason=data.reason,
            transfer_id=data.id or uuid.uuid4(),
        )
        return Response(transfer_out(record), status_code=HTTP_201_CREATED if created else HTTP_200_OK)

    @post("/credit", summary="Credit a registered player's account (from house adjustments)")
    async def credit(self, data: JSONBody[AdjustRequest], db_session: DbSession) -> Response[TransferOut]:
        return await self._adjust("credit", data, db_session)

    @post("/debit", summary="Debit a player's account (to house adjustments)")
    async def debit(self, data: JSONBody[AdjustRequest], db_session: DbSession) -> Response[TransferOut]:
        return await self._adjust("debit", data, db_session)
