"""A player's own wallet: balances, history, responsible-play limits."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated

from litestar import Controller, get, put
from litestar.datastructures import State
from litestar.params import FromQuery, JSONBody, Parameter

from tablium_kit.auth import BEARER, caller
from tablium_kit.deps import DbReader, DbSession
from tablium_kit.errors import InvalidInput
from tablium_wallet.api.schemas import AccountOut, HistoryPage, Limits, LimitsOut, account_out, transfer_out
from tablium_wallet.domain.accounts import player_owner
from tablium_wallet.services.accounts import find_accounts, read_accounts
from tablium_wallet.services.history import history
from tablium_wallet.services.limits import LimitsState, get_limits, set_limits
from tablium_wallet.settings import WalletSettings

_CURSOR = re.compile(r"[0-9]{1,19}")
# Cursors are transfers' ``seq``, a bigint.
_MAX_CURSOR = 2**63 - 1


def _limits_out(state: LimitsState, settings: WalletSettings) -> LimitsOut:
    return LimitsOut(
        in_force=Limits.of(state.in_force),
        scheduled=Limits.of(state.scheduled) if state.scheduled else None,
        scheduled_at=state.scheduled_at,
        cooling_off_s=settings.limits_cooling_off_s,
    )


class WalletController(Controller):
    path = "/api/v1/wallet"
    tags = ["wallet"]
    security = BEARER

    @get("/balances", summary="My accounts and balances")
    async def balances(self, db_reader: DbReader) -> list[AccountOut]:
        return [account_out(a) for a in await read_accounts(db_reader, owner=player_owner(caller().subject))]

    @get("/history", summary="My transfers, newest first")
    async def history(
        self,
        db_session: DbSession,
        cursor: FromQuery[str | None] = None,
        limit: Annotated[int, Parameter(ge=1, le=200)] = 50,
        asset: FromQuery[str | None] = None,
        code: FromQuery[str | None] = None,
    ) -> HistoryPage:
        # ASCII digits only (str.isdigit() accepts "²", which int() refuses) and within bigint.
        if cursor is not None and not (_CURSOR.fullmatch(cursor) and int(cursor) <= _MAX_CURSOR):
            raise InvalidInput("cursor must be a value returned as next_cursor")
        accounts = await find_accounts(db_session, owner=player_owner(caller().subject))
        items, next_cursor = await history(
            db_session,
            [a.id for a in accounts],
            cursor=int(cursor) if cursor is not None else None,
            limit=limit,
            asset=asset,
            code=code,
        )
        return HistoryPage(
            items=[transfer_out(t) for t in items], next_cursor=str(next_cursor) if next_cursor else None
        )

    @get("/limits", summary="My responsible-play limits")
    async def get_limits(self, db_session: DbSession, state: State) -> LimitsOut:
        settings: WalletSettings = state.settings
        return _limits_out(await get_limits(db_session, player_owner(caller().subject), datetime.now(UTC)), settings)

    @put("/limits", summary="Set my limits: tightening applies now, loosening after the cooling-off")
    async def put_limits(self, data: JSONBody[Limits], db_session: DbSession, state: State) -> LimitsOut:
        settings: WalletSettings = state.settings
        player_id = caller().subject
        changed = await set_limits(
            db_session,
            player_owner(player_id),
            data.to_rules(),
            now=datetime.now(UTC),
            cooling_off=timedelta(seconds=settings.limits_cooling_off_s),
            actor=player_id,
        )
        return _limits_out(changed, settings)
