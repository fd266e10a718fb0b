"""A withdrawal is sent at most once and settled once, whatever the crash: the served process SIGKILLs its
whole process group at a step of sending (``crash_at``), and a fresh process takes over from the database.

Steps: ``signed`` (signed in memory, nothing committed), ``recorded`` (the signed bytes committed, not
broadcast), ``sent`` (broadcast and mined, not recorded as sent). Also: parallel identical requests over HTTP
give one withdrawal and one hold.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import anyio
import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from tablium_blockchain.domain.addresses import MasterKey
from tablium_blockchain.services.chain import Chain, connect

from tablium_kit import db
from tablium_kit.localchain import LocalChain
from tablium_kit.messaging.testing import AmqpNames
from tablium_kit.service_processes import ServiceProcess, serve_jwks, start_service

from .conftest import CONFIRMATIONS, KID, SIGNING_KEY, bearer, blockchain_settings
from .withdrawal_support import available, fund_player, mint_to_hot_wallet, recipient, token_balance, withdrawal_events

USDT = 10**6


@pytest.fixture(scope="module")
def jwks_url() -> Iterator[str]:
    with serve_jwks(KID, SIGNING_KEY.public_key()) as url:
        yield url


@pytest.fixture(scope="module")
async def database_url(make_database: Callable[[str], Awaitable[str]]) -> str:
    return await make_database("blockchain_crashes")


@pytest.fixture(scope="module")
def serve(
    database_url: str, local_chain: LocalChain, amqp_names: AmqpNames, wallet_service: ServiceProcess, jwks_url: str
) -> Callable[..., Awaitable[ServiceProcess]]:
    async def start(crash_at: str = "") -> ServiceProcess:
        env = {
            "TABLIUM_ENVIRONMENT": "test",
            "TABLIUM_JWKS_URL": jwks_url,
            "TABLIUM_EVENTS_EXCHANGE": amqp_names.exchange,
            "TABLIUM_BLOCKCHAIN_DATABASE_URL": database_url,
            "TABLIUM_BLOCKCHAIN_RPC_URL": local_chain.url,
            "TABLIUM_BLOCKCHAIN_WALLET_URL": wallet_service.url,
            "TABLIUM_BLOCKCHAIN_CONFIRMATIONS": str(CONFIRMATIONS),
            "TABLIUM_BLOCKCHAIN_WATCH": "false",
            "TABLIUM_BLOCKCHAIN_SWEEP": "false",
            "TABLIUM_BLOCKCHAIN_SEND_INTERVAL_S": "0.2",
            "TABLIUM_BLOCKCHAIN_CRASH_AT": crash_at,
            "TABLIUM_LOG_LEVEL": "WARNING",
        }
        return await anyio.to_thread.run_sync(lambda: start_service("blockchain", env, ready_path="/ready"))

    return start


@pytest.fixture(scope="module")
async def sessions(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = db.create_engine(database_url, pool_size=2)
    yield db.session_factory(engine)
    await engine.dispose()


@pytest.fixture(scope="module")
async def chain(
    serve: Callable[..., Awaitable[ServiceProcess]],
    database_url: str,
    local_chain: LocalChain,
    amqp_names: AmqpNames,
    sessions: async_sessionmaker[AsyncSession],
) -> Chain:
    """The chain (and the token a first served process deployed), with tokens in the hot wallet."""
    first = await serve()
    first.stop()
    settings = blockchain_settings(database_url, local_chain, amqp_names.exchange)
    master = MasterKey(
        settings.master_mnemonic, deposit_path=settings.deposit_path, hot_wallet_path=settings.hot_wallet_path
    )
    chain = await connect(settings, sessions, master)
    await mint_to_hot_wallet(chain, 1_000 * USDT)
    return chain


async def one(sessions: async_sessionmaker[AsyncSession], sql: str, **params: Any) -> Any:
    async with sessions() as session:
        return await session.scalar(text(sql), params)


async def died(service: ServiceProcess) -> int:
    with anyio.fail_after(120):
        while service.process.poll() is None:  # noqa: ASYNC110 - another process
            await anyio.sleep(0.1)
    return int(service.process.returncode)


@pytest.mark.parametrize("step", ["signed", "recorded", "sent"])
async def test_a_crash_at_any_step_sends_once_and_settles_once(
    step: str,
    serve: Callable[..., Awaitable[ServiceProcess]],
    chain: Chain,
    local_chain: LocalChain,
    sessions: async_sessionmaker[AsyncSession],
    wallet_service: ServiceProcess,
) -> None:
    player, to = str(uuid.uuid4()), recipient()
    await fund_player(wallet_service.url, player, 10 * USDT)
    hot = chain.master.hot_wallet().address
    nonce_before = int(await chain.w3.eth.get_transaction_count(hot, "pending"))
    service = await serve(crash_at=step)
    try:
        async with httpx.AsyncClient(base_url=service.url, timeout=30) as http:
            body = {"address": to, "asset": "USDT", "amount": str(4 * USDT)}
            headers = {**bearer(player), "Idempotency-Key": f"crash-{step}"}
            response = await http.post("/api/v1/withdrawals", json=body, headers=headers)
        assert response.status_code == 201, response.text
        wid = uuid.UUID(response.json()["id"])
        assert await died(service) == -9
    finally:
        service.stop()

    status = await one(sessions, "SELECT status FROM withdrawals WHERE id = :w", w=wid)
    signed = await one(sessions, "SELECT count(*) FROM chain_txs WHERE withdrawal_id = :w", w=wid)
    assert (status, signed) == {"signed": ("held", 0), "recorded": ("signed", 1), "sent": ("signed", 1)}[step]
    if step == "sent":
        # Automine: what was broadcast is mined, just after the node answered the send: waited for, not raced.
        sent = await one(sessions, "SELECT tx_hash FROM chain_txs WHERE withdrawal_id = :w", w=wid)
        await chain.w3.eth.wait_for_transaction_receipt(sent, timeout=30)
    mined = int(await chain.w3.eth.get_transaction_count(hot))
    assert mined == nonce_before + (1 if step == "sent" else 0)

    service = await serve()
    try:
        with anyio.fail_after(120):
            while await one(sessions, "SELECT status FROM withdrawals WHERE id = :w", w=wid) != "confirmed":
                local_chain.mine(1)
                await anyio.sleep(0.2)
    finally:
        service.stop()
    assert await token_balance(chain, to) == 4 * USDT  # sent once
    assert int(await chain.w3.eth.get_transaction_count(hot)) == nonce_before + 1
    assert await one(sessions, "SELECT count(*) FROM chain_txs WHERE withdrawal_id = :w", w=wid) == 1
    kinds = [kind for kind, _ in await withdrawal_events(sessions, str(wid))]
    assert kinds == ["withdrawal_requested", "withdrawal_sent", "withdrawal_confirmed"]
    # Held once (this wallet consumes no events: the hold stays pending, as it would until the handler posts it).
    assert await available(wallet_service.url, player) == 6 * USDT


async def test_parallel_identical_requests_give_one_withdrawal_and_one_hold(
    serve: Callable[..., Awaitable[ServiceProcess]],
    chain: Chain,
    sessions: async_sessionmaker[AsyncSession],
    wallet_service: ServiceProcess,
) -> None:
    player, to = str(uuid.uuid4()), recipient()
    await fund_player(wallet_service.url, player, 10 * USDT)
    service = await serve()
    try:
        async with httpx.AsyncClient(base_url=service.url, timeout=60) as http:
            body = {"address": to, "asset": "USDT", "amount": str(3 * USDT)}
            headers = {**bearer(player), "Idempotency-Key": "twins"}
            answers = await asyncio.gather(
                *[http.post("/api/v1/withdrawals", json=body, headers=headers) for _ in range(12)]
            )
    finally:
        service.stop()
    assert {a.status_code for a in answers} <= {200, 201}, [a.text for a in answers]
    assert [a.status_code for a in answers].count(201) == 1
    assert len({a.json()["id"] for a in answers}) == 1
    assert await one(sessions, "SELECT count(*) FROM withdrawals WHERE player_id = :p", p=uuid.UUID(player)) == 1
    assert await available(wallet_service.url, player) == 7 * USDT
