"""Deposits per second on a real anvil, end to end (chain -> watcher -> RabbitMQ -> wallet balance) and by stage,
and the watcher's lag, against raw ``eth_getLogs`` polling on the same node.

    .venv/bin/python bench/chain_bench.py [--deposits N] [--per-block B] [--window W] [--timeout S]

A throwaway anvil and databases. N token transfers to 50 deposit addresses are mined B per block. Then:
- **baseline**: raw ``eth_getLogs`` polling of the token's ``Transfer`` logs over the same blocks, W blocks per
  call (what any indexer does at least): logs per second;
- **watcher, catch-up** (in this process, stopping at the outbox): the service's watcher (``Watcher.poll``:
  blocks with their transactions, the token's logs, the consistency checks, the deposits and their
  ``deposit_detected`` events written to the outbox) over the same blocks, W per poll: deposits detected per
  second; then N more blocks and the verdicts: deposits confirmed (``deposit_confirmed`` written) per second;
- **watcher, steady stream**: the watcher's loop running while a block of B transfers arrives every ~0.5 s:
  its lag (head minus the last scanned block) sampled after each block;
- **end to end** (bench/chain_bench_e2e.py): a real ``tablium-blockchain serve`` (watcher loop, outbox relay)
  and the wallet's own consumer and handlers on its own database, over a private RabbitMQ exchange: N more
  transfers in a burst, from the first one sent to the last credit in the wallet; then a steady stream, the
  time from a block's N-th confirmation to its deposits credited.
Each wait is bounded by ``--timeout``; everything is removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio
import chain_bench_e2e
import httpx
import structlog
from eth_account import Account
from sqlalchemy import func, select, text
from tablium_blockchain.db.models import Deposit
from tablium_blockchain.domain.addresses import MasterKey
from tablium_blockchain.domain.transfers import TRANSFER_TOPIC
from tablium_blockchain.services.chain import connect, send, token_contract
from tablium_blockchain.services.watcher import Watcher
from tablium_blockchain.settings import BlockchainSettings

from tablium_kit import db, migrations
from tablium_kit.localchain import DEV_MNEMONIC, LocalChain

POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432"
MIGRATIONS = Path(__file__).resolve().parents[1] / "services/blockchain/src/tablium_blockchain/db/migrations"
ADDRESSES = 50
CONFIRMATIONS = 3


async def main(n: int, per_block: int, window: int, timeout_s: float, stream_per_block: int) -> None:
    # The watcher logs every deposit: the console would be the benchmark.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    run = uuid.uuid4().hex[:8]
    database_url = f"{POSTGRES_URL}/bench_chain_{run}"
    await db.ensure_database(database_url)
    await anyio.to_thread.run_sync(migrations.upgrade, database_url, MIGRATIONS)
    node = LocalChain()
    node.start()
    engine = db.create_engine(database_url, pool_size=4)
    rpc = httpx.AsyncClient(timeout=30)
    try:
        settings = BlockchainSettings.from_env(
            "blockchain",
            {
                "TABLIUM_BLOCKCHAIN_DATABASE_URL": database_url,
                "TABLIUM_BLOCKCHAIN_RPC_URL": node.url,
                "TABLIUM_BLOCKCHAIN_CONFIRMATIONS": str(CONFIRMATIONS),
                "TABLIUM_BLOCKCHAIN_MAX_BLOCKS_PER_POLL": str(window),
                "TABLIUM_BLOCKCHAIN_POLL_INTERVAL_S": "0.1",
                "TABLIUM_ENVIRONMENT": "test",
            },
        )
        sessions = db.session_factory(engine)
        master = MasterKey(
            settings.master_mnemonic, deposit_path=settings.deposit_path, hot_wallet_path=settings.hot_wallet_path
        )
        chain = await connect(settings, sessions, master)
        Account.enable_unaudited_hdwallet_features()
        payer = Account.from_mnemonic(DEV_MNEMONIC, account_path="m/44'/60'/0'/0/1")
        token = token_contract(chain)
        mint = await token.functions.mint(payer.address, 10**15).build_transaction(
            {"from": master.hot_wallet().address}
        )
        await send(chain.w3, master.hot_wallet(), {"to": mint["to"], "data": mint["data"]})
        addresses = [master.deposit_address(i) for i in range(ADDRESSES)]
        async with sessions() as session, session.begin():
            for i, address in enumerate(addresses):
                await session.execute(
                    text(
                        "INSERT INTO deposit_addresses (id, player_id, asset, derivation_index, address) "
                        "VALUES (:id, :p, 'USDT', :i, :a)"
                    ),
                    {"id": uuid.uuid4(), "p": uuid.uuid4(), "i": i, "a": address},
                )
        first = node.block_number() + 1
        settings = BlockchainSettings.from_env(
            "blockchain", {**_env(settings), "TABLIUM_BLOCKCHAIN_START_BLOCK": str(first)}
        )
        nonce = int(await chain.w3.eth.get_transaction_count(payer.address))
        base_fee = int((await chain.w3.eth.get_block("latest"))["baseFeePerGas"])

        def signed_transfers(count: int) -> list[bytes]:
            """``count`` token transfers from the payer, signed ahead (signing is slow in Python)."""
            nonlocal nonce
            raws = []
            for _ in range(count):
                item = token.encode_abi("transfer", args=[addresses[nonce % ADDRESSES], 1_000 + nonce])
                signed = payer.sign_transaction(
                    {
                        "type": 2,
                        "chainId": chain.chain_id,
                        "nonce": nonce,
                        "to": token.address,
                        "data": item,
                        "gas": 80_000,
                        "maxFeePerGas": 4 * base_fee + 10**9,
                        "maxPriorityFeePerGas": 10**9,
                        "value": 0,
                    }
                )
                raws.append(bytes(signed.raw_transaction))
                nonce += 1
            return raws

        async def send_blocks(
            raws: list[bytes],
            pause_s: float = 0.0,
            after_block: Callable[[], Awaitable[None]] | None = None,
            in_block: int = per_block,
        ) -> None:
            """Signed transfers sent and mined ``in_block`` to a block."""
            node.rpc("evm_setAutomine", False)
            try:
                for start in range(0, len(raws), in_block):
                    # One JSON-RPC batch per block: the sending is not what is measured.
                    batch = [
                        {"jsonrpc": "2.0", "id": i, "method": "eth_sendRawTransaction", "params": ["0x" + raw.hex()]}
                        for i, raw in enumerate(raws[start : start + in_block])
                    ]
                    answers = (await rpc.post(node.url, json=batch)).raise_for_status().json()
                    if refused := [answer["error"] for answer in answers if "error" in answer]:
                        raise RuntimeError(f"the node refused transfers: {refused[:3]}")
                    node.mine(1)
                    if after_block is not None:
                        await after_block()
                    if pause_s:
                        await asyncio.sleep(pause_s)
            finally:
                node.rpc("evm_setAutomine", True)

        async def stream(
            count: int, pause_s: float = 0.0, after_block: Callable[[], Awaitable[None]] | None = None
        ) -> None:
            await send_blocks(signed_transfers(count), pause_s, after_block)

        await stream(n)
        last = node.block_number()

        # Baseline: raw eth_getLogs over the same blocks.
        start = time.perf_counter()
        logs = 0
        for low in range(first, last + 1, window):
            found = await chain.w3.eth.get_logs(
                {
                    "fromBlock": low,
                    "toBlock": min(last, low + window - 1),
                    "address": token.address,
                    "topics": [TRANSFER_TOPIC],
                }
            )
            logs += len(found)
        raw_s = time.perf_counter() - start

        watcher = Watcher(chain, sessions, settings)
        async with asyncio.timeout(timeout_s):
            start = time.perf_counter()
            while not (await watcher.poll()).caught_up:
                pass
            detect_s = time.perf_counter() - start
            node.mine(CONFIRMATIONS)
            start = time.perf_counter()
            await watcher.poll()
            confirm_s = time.perf_counter() - start
        async with sessions() as session:
            counts = dict(
                (await session.execute(select(Deposit.status, func.count()).group_by(Deposit.status))).tuples().all()
            )
        if counts.get("confirmed") != n or logs < n:
            raise SystemExit(f"the watcher confirmed {counts} of {n} transfers ({logs} logs)")

        # Steady stream: the watcher's own loop while blocks arrive.
        lags: list[int] = []

        async def sample() -> None:
            await asyncio.sleep(0.25)
            head = node.block_number()
            cursor = await _cursor(sessions)
            lags.append(max(0, head - (cursor - 1)))

        await watcher.start()
        try:
            async with asyncio.timeout(timeout_s):
                await stream(min(n, 20 * per_block), pause_s=0.25, after_block=sample)
        finally:
            await watcher.stop()

        end_to_end = await chain_bench_e2e.run(
            postgres_url=POSTGRES_URL,
            run_id=run,
            rpc_url=node.url,
            token_address=token.address,
            addresses=addresses,
            confirmations=CONFIRMATIONS,
            window=window,
            n=n,
            per_block=per_block,
            stream_per_block=stream_per_block,
            timeout_s=timeout_s,
            sign=signed_transfers,
            send=send_blocks,
            head=node.block_number,
            mine=node.mine,
        )
    finally:
        await engine.dispose()
        await rpc.aclose()
        node.remove()
        await db.drop_database(database_url)

    print(f"{'method':<44} {'transfers':>9} {'seconds':>8} {'per s':>9} {'ratio':>6}")
    print(f"{'raw eth_getLogs polling (baseline)':<44} {logs:>9} {raw_s:>8.2f} {logs / raw_s:>9.0f} {1.0:>6.2f}")
    for label, seconds in (
        ("watcher: detected (blocks+logs+outbox)", detect_s),
        ("watcher: confirmed (verdicts+outbox)", confirm_s),
        ("end to end: detected (burst, from 1st sent)", end_to_end.burst_detected_s),
        ("end to end: confirmed (deposit_confirmed)", end_to_end.burst_confirmed_s),
        ("end to end: credited in the wallet (burst)", end_to_end.burst_s),
    ):
        rate = n / seconds
        print(f"{label:<44} {n:>9} {seconds:>8.2f} {rate:>9.0f} {rate / (logs / raw_s):>6.2f}")
    print(
        f"steady stream ({per_block}/block, a block every ~0.5 s): watcher lag in blocks "
        f"mean {statistics.mean(lags):.1f}, max {max(lags)} over {len(lags)} blocks"
    )
    print(end_to_end.summary())


def _env(settings: BlockchainSettings) -> dict[str, str]:
    return {
        "TABLIUM_BLOCKCHAIN_DATABASE_URL": settings.database_url,
        "TABLIUM_BLOCKCHAIN_RPC_URL": settings.rpc_url,
        "TABLIUM_BLOCKCHAIN_CONFIRMATIONS": str(settings.confirmations),
        "TABLIUM_BLOCKCHAIN_MAX_BLOCKS_PER_POLL": str(settings.max_blocks_per_poll),
        "TABLIUM_BLOCKCHAIN_POLL_INTERVAL_S": str(settings.poll_interval_s),
        "TABLIUM_ENVIRONMENT": "test",
    }


async def _cursor(sessions: object) -> int:
    async with sessions() as session:  # type: ignore[operator]
        return int(await session.scalar(text("SELECT next_block FROM watch_cursors")) or 0)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--deposits", type=int, default=500)
    parser.add_argument("--per-block", type=int, default=50)
    parser.add_argument("--window", type=int, default=20)
    parser.add_argument(
        "--stream-per-block",
        type=int,
        default=10,
        help="end to end steady stream: transfers per block, a block every ~0.5 s (kept under what the wallet's "
        "consumer takes, or the latency measured is its backlog growing)",
    )
    parser.add_argument("--timeout", type=float, default=180, help="the longest any one stage may wait, seconds")
    args = parser.parse_args()
    asyncio.run(main(args.deposits, args.per_block, args.window, args.timeout, args.stream_per_block))
