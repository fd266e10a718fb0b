"""The end-to-end stage of bench/chain_bench.py: deposits on chain -> the blockchain service (a real
``tablium-blockchain serve`` process: watcher loop, outbox relay) -> RabbitMQ -> the wallet's own consumer and
handlers (in this process, on the wallet's own database) -> the player's balance credited.

Everything is private to the run: a fresh blockchain database (the token is the one the bench deployed:
``usdt_address``), a fresh wallet database, an exchange and queues of its own, removed at the end.

Two measures:
- **burst**: ``n`` transfers (signed ahead) sent and mined ``per_block`` to a block back to back, then the
  confirmations: from the first transaction sent to the last credit in the wallet (and to the last deposit
  detected, and confirmed, by the watcher);
- **steady stream**: a block of ``stream_per_block`` every ~0.5 s: for each block, the time from the block that
  gives it its N-th confirmation being mined to its deposits being credited in the wallet.
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import aio_pika
import anyio
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from tablium_wallet.app import MIGRATIONS as WALLET_MIGRATIONS
from tablium_wallet.db.models import MESSAGING as WALLET_MESSAGING
from tablium_wallet.events.handlers import HANDLERS as WALLET_HANDLERS
from tablium_wallet.settings import WalletSettings

from tablium_kit import db, migrations
from tablium_kit.messaging import Consumer
from tablium_kit.messaging.topology import QueueNames
from tablium_kit.service_processes import ServiceProcess, start_service

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
CHAIN_MIGRATIONS = Path(__file__).resolve().parents[1] / "services/blockchain/src/tablium_blockchain/db/migrations"


@dataclass
class EndToEnd:
    burst_s: float  # first transaction sent -> last credit
    burst_detected_s: float  # first transaction sent -> last deposit stored by the watcher
    burst_confirmed_s: float  # first transaction sent -> last deposit_confirmed written
    drain_s: float  # last block mined -> last credit
    latencies: list[float]  # steady stream: N-th confirmation mined -> credited, per block
    stream_per_block: int

    def summary(self) -> str:
        ordered = sorted(self.latencies)
        p50 = ordered[len(ordered) // 2]
        return (
            f"end to end, steady stream ({self.stream_per_block}/block, a block every ~0.5 s): N-th confirmation "
            "mined -> wallet credited: "
            f"mean {statistics.mean(ordered):.2f} s, p50 {p50:.2f} s, max {ordered[-1]:.2f} s over {len(ordered)} "
            f"blocks; the burst: sent and mined in {self.burst_s - self.drain_s:.2f} s, its last block credited "
            f"{self.drain_s:.2f} s later"
        )


async def _count(engine: AsyncEngine, sql: str) -> int:
    async with engine.connect() as connection:
        return int(await connection.scalar(text(sql)) or 0)


CREDITS = "SELECT count(*) FROM transfers WHERE code = 'deposit'"
DETECTED = "SELECT count(*) FROM deposits"
CONFIRMED = "SELECT count(*) FROM deposits WHERE status = 'confirmed'"


async def run(
    *,
    postgres_url: str,
    run_id: str,
    rpc_url: str,
    token_address: str,
    addresses: list[str],
    confirmations: int,
    window: int,
    n: int,
    per_block: int,
    stream_per_block: int,
    timeout_s: float,
    sign: Callable[[int], list[bytes]],
    send: Callable[[list[bytes], float, Callable[[], Awaitable[None]] | None, int], Awaitable[None]],
    head: Callable[[], int],
    mine: Callable[[int], None],
) -> EndToEnd:
    """``sign(count)``: ``count`` transfers signed ahead; ``send(raws, pause, after_block, in_block)``: sent and
    mined ``in_block`` to a block, with a pause and a callback after each block; ``head()``, ``mine(blocks)``."""
    chain_url = f"{postgres_url}/bench_chain_e2e_{run_id}"
    wallet_url = f"{postgres_url}/bench_chain_wallet_{run_id}"
    exchange = f"tablium.events.bench-{run_id}"
    queues = QueueNames.for_service("wallet", f"bench-{run_id}.")
    for url, directory in ((chain_url, CHAIN_MIGRATIONS), (wallet_url, WALLET_MIGRATIONS)):
        await db.ensure_database(url)
        await anyio.to_thread.run_sync(migrations.upgrade, url, directory)
    chain_engine = db.create_engine(chain_url, pool_size=2)
    wallet_engine = db.create_engine(wallet_url, pool_size=4)
    service: ServiceProcess | None = None
    wallet_settings = WalletSettings.from_env(
        "wallet",
        {"TABLIUM_WALLET_DATABASE_URL": wallet_url, "TABLIUM_EVENTS_EXCHANGE": exchange, "TABLIUM_ENVIRONMENT": "test"},
    )
    consumer = Consumer(wallet_settings, db.session_factory(wallet_engine), WALLET_MESSAGING, queues=queues)
    for event_type, handler in WALLET_HANDLERS.items():
        consumer.handler(event_type)(handler)
    try:
        async with chain_engine.begin() as connection:
            for i, address in enumerate(addresses):
                await connection.execute(
                    text(
                        "INSERT INTO deposit_addresses (id, player_id, asset, derivation_index, address) "
                        "VALUES (:id, :p, 'USDT', :i, :a)"
                    ),
                    {"id": uuid.uuid4(), "p": uuid.uuid4(), "i": i, "a": address},
                )
        await consumer.start()  # its queue bound before anything is published
        env = {
            "TABLIUM_ENVIRONMENT": "test",
            "TABLIUM_LOG_LEVEL": "WARNING",
            "TABLIUM_EVENTS_EXCHANGE": exchange,
            "TABLIUM_BLOCKCHAIN_DATABASE_URL": chain_url,
            "TABLIUM_BLOCKCHAIN_RPC_URL": rpc_url,
            "TABLIUM_BLOCKCHAIN_USDT_ADDRESS": token_address,
            "TABLIUM_BLOCKCHAIN_CONFIRMATIONS": str(confirmations),
            "TABLIUM_BLOCKCHAIN_MAX_BLOCKS_PER_POLL": str(window),
            "TABLIUM_BLOCKCHAIN_POLL_INTERVAL_S": "0.1",
            "TABLIUM_BLOCKCHAIN_START_BLOCK": str(head() + 1),
            "TABLIUM_BLOCKCHAIN_SEND": "false",
            "TABLIUM_BLOCKCHAIN_SWEEP": "false",
            # The server's 100 connections are shared with everything else running here.
            "TABLIUM_BLOCKCHAIN_DB_POOL_SIZE": "4",
            "TABLIUM_BLOCKCHAIN_DB_READ_POOL_SIZE": "1",
        }
        service = await anyio.to_thread.run_sync(lambda: start_service("blockchain", env, ready_path="/ready"))

        async def reach(engine: AsyncEngine, sql: str, count: int) -> float:
            while await _count(engine, sql) < count:  # noqa: ASYNC110 - the count is in another database
                await asyncio.sleep(0.02)
            return time.perf_counter()

        # Burst: the service follows the head; n transfers arrive as fast as the node mines them.
        raws = sign(n)
        start = time.perf_counter()
        await send(raws, 0.0, None, per_block)
        mine(confirmations - 1)
        burst_end = time.perf_counter()
        async with asyncio.timeout(timeout_s):
            detected_at = await reach(chain_engine, DETECTED, n)
            confirmed_at = await reach(chain_engine, CONFIRMED, n)
            credited_at = await reach(wallet_engine, CREDITS, n)

        # Steady stream: per block, N-th confirmation mined -> credited.
        mined_at: list[float] = []
        credited: list[float] = []

        async def after_block() -> None:
            mined_at.append(time.perf_counter())

        async def sample(blocks: int) -> None:
            for i in range(blocks):
                credited.append(await reach(wallet_engine, CREDITS, n + (i + 1) * stream_per_block))

        blocks = 20
        raws = sign(blocks * stream_per_block)
        async with asyncio.timeout(timeout_s):
            sampler = asyncio.create_task(sample(blocks))
            await send(raws, 0.5, after_block, stream_per_block)
            for _ in range(confirmations - 1):  # the last blocks' confirmations, at the same pace
                mine(1)
                mined_at.append(time.perf_counter())
                await asyncio.sleep(0.5)
            await sampler
        latencies = [credited[i] - mined_at[i + confirmations - 1] for i in range(blocks)]
        return EndToEnd(
            burst_s=credited_at - start,
            burst_detected_s=detected_at - start,
            burst_confirmed_s=confirmed_at - start,
            drain_s=credited_at - burst_end,
            latencies=latencies,
            stream_per_block=stream_per_block,
        )
    finally:
        if service is not None:
            await anyio.to_thread.run_sync(service.stop)
        await consumer.stop()
        await chain_engine.dispose()
        await wallet_engine.dispose()
        for url in (chain_url, wallet_url):
            await db.drop_database(url)
        await _delete_amqp(exchange, queues)


async def _delete_amqp(exchange: str, queues: QueueNames) -> None:
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        for name in (queues.main, queues.retry, queues.dlq):
            await channel.queue_delete(name)
        await channel.exchange_delete(exchange)
