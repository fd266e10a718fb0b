"""The service starts against a real anvil: compiles and deploys its token, answers health and readiness."""

from __future__ import annotations

import uuid

from litestar import Litestar
from litestar.testing import AsyncTestClient
from tablium_blockchain.services.chain import Chain, token_contract

from tablium_kit.localchain import DEV_CHAIN_ID

from .conftest import bearer


async def test_health_and_ready(client: AsyncTestClient[Litestar]) -> None:
    assert (await client.get("/health")).status_code == 200
    ready = await client.get("/ready")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"]["chain"] == "up"


async def test_the_token_is_compiled_and_deployed_with_six_decimals(chain: Chain) -> None:
    assert chain.chain_id == DEV_CHAIN_ID
    token = token_contract(chain)
    assert await token.functions.decimals().call() == 6
    assert await token.functions.symbol().call() == "USDT"
    assert await token.functions.owner().call() == chain.master.hot_wallet().address


async def test_chain_status_is_for_admins(client: AsyncTestClient[Litestar], chain: Chain) -> None:
    player = str(uuid.uuid4())
    assert (await client.get("/api/v1/chain/status", headers=bearer(player))).status_code == 403
    response = await client.get("/api/v1/chain/status", headers=bearer(player, ["player", "admin"]))
    assert response.status_code == 200, response.text
    status = response.json()
    assert status["chain_id"] == chain.chain_id
    assert status["head_block"] >= 1
    assert status["hot_wallet"] == chain.master.hot_wallet().address
    assert int(status["hot_wallet_balances"]["ETH"]) > 0
    assert set(status["hot_wallet_balances"]) == {"ETH", "USDT"}
    assert isinstance(status["base_fee_per_gas"], str)
    assert status["withdrawals_pending"] == 0
    assert status["withdrawals_paused"] is False
