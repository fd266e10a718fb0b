"""What the withdrawal tests share: a real wallet process, a funded player, the hot wallet's tokens, events."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
from eth_account import Account
from httpx import Response
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from tablium_blockchain.services.chain import Chain, send, token_contract
from tablium_blockchain.services.sender import Sender

from tablium_kit.service_processes import WalletLedger

from .conftest import bearer


def recipient() -> str:
    """A fresh address of the player's (nobody else's: a new key)."""
    return str(Account.create().address)


async def fund_player(wallet_url: str, player: str, amount: int, asset: str = "USDT") -> None:
    ledger = WalletLedger(wallet_url, "event", asset=asset)
    try:
        await ledger.fund(player, amount)
    finally:
        await ledger.aclose()


async def available(wallet_url: str, player: str, asset: str = "USDT") -> int:
    ledger = WalletLedger(wallet_url, "event", asset=asset)
    try:
        return await ledger.available(await ledger.account(f"player:{player}", "player"))
    finally:
        await ledger.aclose()


async def mint_to_hot_wallet(chain: Chain, amount: int) -> None:
    hot = chain.master.hot_wallet()
    mint = await token_contract(chain).functions.mint(hot.address, amount).build_transaction({"from": hot.address})
    await send(chain.w3, hot, {"to": mint["to"], "data": mint["data"]})


async def token_balance(chain: Chain, address: str) -> int:
    return int(await token_contract(chain).functions.balanceOf(address).call())


async def withdraw(
    client: AsyncTestClient[Litestar],
    player: str,
    *,
    address: str,
    amount: int,
    asset: str = "USDT",
    key: str | None = None,
) -> Response:
    return await client.post(
        "/api/v1/withdrawals",
        json={"address": address, "asset": asset, "amount": str(amount)},
        headers={**bearer(player), "Idempotency-Key": key or uuid.uuid4().hex},
    )


async def a_held_withdrawal(
    client: AsyncTestClient[Litestar], wallet_url: str, amount: int, *, funded: int
) -> tuple[str, str, str]:
    """A player funded with ``funded`` asks to withdraw ``amount`` USDT to a fresh address of theirs:
    (player, address, withdrawal id), the withdrawal held and waiting for the sender."""
    player, to = str(uuid.uuid4()), recipient()
    await fund_player(wallet_url, player, funded)
    response = await withdraw(client, player, address=to, amount=amount)
    assert response.status_code == 201, response.text
    return player, to, str(response.json()["id"])


def retune(sender: Sender, **changes: Any) -> None:
    """The sender and its fillers under changed settings (a test makes them more eager or stricter)."""
    sender.settings = msgspec.structs.replace(sender.settings, **changes)
    sender.fillers.settings = sender.settings


async def withdrawal_events(sessions: async_sessionmaker[AsyncSession], withdrawal_id: str) -> list[tuple[str, Any]]:
    async with sessions() as session:
        rows = await session.execute(
            text("SELECT type, envelope->'data' FROM outbox WHERE subject = :s ORDER BY seq"), {"s": withdrawal_id}
        )
        return [(row[0].removeprefix("blockchain."), row[1]) for row in rows]


async def status_of(sessions: async_sessionmaker[AsyncSession], withdrawal_id: str) -> str:
    async with sessions() as session:
        status: str = await session.scalar(
            text("SELECT status FROM withdrawals WHERE id = :id"), {"id": uuid.UUID(withdrawal_id)}
        )
        return status
