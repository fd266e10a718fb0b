"""A player's deposit addresses."""

from __future__ import annotations

from uuid import UUID

from litestar import Controller, get
from litestar.params import FromQuery

from tablium_blockchain.api.schemas import DepositAddressOut
from tablium_blockchain.domain.addresses import payment_uri
from tablium_blockchain.domain.assets import DECIMALS, Asset
from tablium_blockchain.services.deposit_addresses import deposit_address
from tablium_blockchain.services.runtime import ChainRuntimeDep
from tablium_kit.auth import BEARER, caller
from tablium_kit.deps import DbSession
from tablium_kit.errors import Forbidden


def player_id() -> UUID:
    """The calling player's id (a player's token names a UUID; nobody else has a deposit address)."""
    try:
        return UUID(caller().subject)
    except ValueError:
        raise Forbidden("only players have deposit addresses") from None


class DepositController(Controller):
    path = "/api/v1/deposits"
    tags = ["deposits"]
    security = BEARER

    @get("/address", summary="My deposit address for an asset, with an EIP-681 payment URI")
    async def address(
        self, asset: FromQuery[Asset], db_session: DbSession, chain_runtime: ChainRuntimeDep
    ) -> DepositAddressOut:
        chain = chain_runtime.connected()
        address = await deposit_address(db_session, chain.master, player_id=player_id(), asset=asset)
        token = chain.tokens.get(asset)
        return DepositAddressOut(
            asset=asset,
            chain_id=chain.chain_id,
            address=address,
            uri=payment_uri(asset=asset, address=address, chain_id=chain.chain_id, token=token),
            token=token,
            decimals=DECIMALS[asset],
            confirmations=chain_runtime.settings.confirmations,
        )
