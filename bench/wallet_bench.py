"""Wallet benchmark: posted transfers/s and latency with 64 concurrent clients, against a naive baseline.

Four runs on the same Postgres, each in a throwaway database that holds 200,000 past transfers (and
its statistics, as a production ledger would), 64 concurrent clients moving money between 8 hot
player accounts:

1. naive baseline: every transfer its own transaction of plain UPDATEs (the two accounts, in id order,
   with the balance check in the WHERE) and an INSERT;
2. the domain layer: the wallet's batching ledger (``Ledger.submit``) in this process, one transfer
   per client at a time;
3. the internal API, one transfer per request: ``POST /internal/v1/transfers`` on ``tablium-wallet
   serve`` (granian, one worker, outbox relay publishing), loaded by ``wrk -t2 -c64`` with service tokens;
4. the internal API, ``--batch`` (32) transfers per request: ``POST /internal/v1/transfers/batch``, as a
   caller settling a hand or paying out a round sends them (TigerBeetle's clients batch the same way).

The API runs count the transfers the answers report made (201 per transfer) and stop on any refusal.
After each run the invariants are checked: per asset, credits equal debits (posted and pending); no
account with debits_must_not_exceed_credits is below zero; every account's counters equal the sums of
its transfers; the ledger holds every transfer counted as made.
Each run is measured after ``--warmup`` seconds of the same load (the database is fresh each time).
Usage: ``.venv/bin/python bench/wallet_bench.py [--seconds 8] [--warmup 2] [--batch 32]``
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from tablium_wallet.app import MIGRATIONS
from tablium_wallet.services.accounts import open_account
from tablium_wallet.services.batch import execute_one
from tablium_wallet.services.ledger import Ledger
from tablium_wallet.services.transfers import NewTransfer

from tablium_kit import db, migrations
from tablium_kit.auth import MAX_SERVICE_TOKEN_TTL_S, ServiceTokens

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PG = "postgresql+asyncpg://postgres@127.0.0.1:5432"
CLIENTS = 64
HOT_ACCOUNTS = 8
FUNDING = 10**15
# Transfers per request in the batch API run: what a caller settling a hand or a payout round sends.
BATCH = 32

# wrk's Lua: each connection sends ``batch`` transfers per request (1: POST /internal/v1/transfers, more:
# POST /internal/v1/transfers/batch), and counts the transfers the answers say were made or refused.
WRK_SCRIPT = """
local accounts = {%(accounts)s}
local batch = %(batch)d
local run = %(run)d
local counter = 0
local thread_id = 0
local threads = {}
made = 0
refused = 0
function setup(thread)
  thread_id = thread_id + 1
  thread:set("tid", thread_id)
  table.insert(threads, thread)
end
function init(args)
  math.randomseed(run + tid * 7919)
end
local function transfer()
  counter = counter + 1
  local id = string.format("%%08x-%%04x-4000-8000-%%012x", run %% 4294967296, tid, counter)
  local d = math.random(#accounts)
  local c = math.random(#accounts - 1)
  if c >= d then c = c + 1 end
  return id, string.format(
    '{"id":"%%s","debit_account_id":"%%s","credit_account_id":"%%s","amount":"%%d","asset":"USDT","code":"bench"}',
    id, accounts[d], accounts[c], math.random(100))
end
function request()
  local id, body = transfer()
  local path = "/internal/v1/transfers"
  if batch > 1 then
    local items = {body}
    for i = 2, batch do
      local _, item = transfer()
      items[i] = item
    end
    body = '{"transfers":[' .. table.concat(items, ",") .. ']}'
    path = "/internal/v1/transfers/batch"
  end
  return wrk.format("POST", path, {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer %(token)s",
    ["Idempotency-Key"] = id,
  }, body)
end
function response(status, headers, body)
  if batch == 1 then
    if status == 201 then made = made + 1 else refused = refused + 1 end
  elseif status ~= 200 then
    refused = refused + batch
  else
    local _, ok = string.gsub(body, '"status":201,', "")
    made = made + ok
    refused = refused + batch - ok
  end
end
function done(summary, latency, requests)
  local m, r = 0, 0
  for _, thread in ipairs(threads) do
    m = m + thread:get("made")
    r = r + thread:get("refused")
  end
  io.write(string.format("transfers made: %%d\\ntransfers refused: %%d\\n", m, r))
end
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# A ledger with a past, as in production, and its statistics: on an empty, never analyzed database
# Postgres plans the ledger's lookups by id as scans of a table it believes empty, keeps those plans
# for the connection's prepared statements, and every run slows as the table grows.
_HISTORY = text(
    "INSERT INTO transfers (id, debit_account_id, credit_account_id, amount, asset, code, flags, metadata, "
    "created_at) SELECT gen_random_uuid(), :debit, :credit, 1, 'USDT', 'history', 0, '{}', now() "
    "FROM generate_series(1, :n)"
)
_HISTORY_COUNTERS = text(
    "UPDATE accounts SET debits_posted = debits_posted + CASE WHEN id = :debit THEN :n ELSE 0 END, "
    "credits_posted = credits_posted + CASE WHEN id = :credit THEN :n ELSE 0 END "
    "WHERE id IN (:debit, :credit)"
)
HISTORY = 200_000


async def prepare(url: str) -> list[uuid.UUID]:
    """A migrated database with HOT_ACCOUNTS funded player accounts and HISTORY past transfers."""
    await db.ensure_database(url)
    await asyncio.to_thread(migrations.upgrade, url, MIGRATIONS)
    engine = db.create_engine(url, pool_size=2)
    try:
        async with db.session_factory(engine)() as session, session.begin():
            house = await open_account(session, owner="house", kind="house_fees", asset="USDT")
            rake = await open_account(session, owner="house", kind="house_rake", asset="USDT")
            players = [
                await open_account(session, owner=f"player:{uuid.uuid4()}", kind="player", asset="USDT")
                for _ in range(HOT_ACCOUNTS)
            ]
            for player in players:
                await execute_one(session, NewTransfer(uuid.uuid4(), house.id, player.id, FUNDING, "USDT", "funding"))
            history = {"debit": house.id, "credit": rake.id, "n": HISTORY}
            await session.execute(_HISTORY, history)
            await session.execute(_HISTORY_COUNTERS, history)
        async with engine.begin() as conn:
            await conn.execute(text("ANALYZE"))
        return [p.id for p in players]
    finally:
        await engine.dispose()


def _pair(accounts: list[uuid.UUID]) -> tuple[uuid.UUID, uuid.UUID]:
    debit, credit = random.sample(accounts, 2)
    return debit, credit


async def run_clients(seconds: float, one: object) -> tuple[int, list[float]]:
    """CLIENTS tasks calling ``one()`` back to back for ``seconds``; (successes, latencies in ms)."""
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def client() -> None:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            await one()  # type: ignore[operator]
            latencies.append((time.perf_counter() - started) * 1000)

    await asyncio.gather(*(client() for _ in range(CLIENTS)))
    return len(latencies), latencies


async def measured(seconds: float, warmup: float, one: object) -> tuple[int, list[float], int]:
    """A warm-up of ``warmup`` seconds (a fresh database, cold caches and connections), then the measured
    run: (successes, latencies in ms, successes during the warm-up)."""
    warm, _ = await run_clients(warmup, one)
    done, latencies = await run_clients(seconds, one)
    return done, latencies, warm


_NAIVE_DEBIT = text(
    "UPDATE accounts SET debits_posted = debits_posted + :amount WHERE id = :id "
    "AND (flags & 1 = 0 OR debits_posted + debits_pending + :amount <= credits_posted)"
)
_NAIVE_CREDIT = text("UPDATE accounts SET credits_posted = credits_posted + :amount WHERE id = :id")
_NAIVE_INSERT = text(
    "INSERT INTO transfers (id, debit_account_id, credit_account_id, amount, asset, code, flags, metadata, "
    "created_at) VALUES (:id, :debit, :credit, :amount, 'USDT', 'bench', 0, '{}', now())"
)


async def naive(url: str, accounts: list[uuid.UUID], seconds: float, warmup: float) -> tuple[int, list[float], int]:
    engine = db.create_engine(url, pool_size=CLIENTS)
    sessions: async_sessionmaker[AsyncSession] = db.session_factory(engine)

    async def one() -> None:
        debit, credit = _pair(accounts)
        amount = random.randint(1, 100)
        async with sessions() as session, session.begin():
            # Plain UPDATEs in id order (so two transfers never deadlock), each its own transaction.
            for account, statement in sorted([(debit, _NAIVE_DEBIT), (credit, _NAIVE_CREDIT)], key=lambda x: x[0]):
                result = await session.execute(statement, {"amount": amount, "id": account})
                assert result.rowcount == 1, "insufficient funds in the baseline"  # type: ignore[attr-defined]
            await session.execute(
                _NAIVE_INSERT, {"id": uuid.uuid4(), "debit": debit, "credit": credit, "amount": amount}
            )

    try:
        return await measured(seconds, warmup, one)
    finally:
        await engine.dispose()


async def domain(url: str, accounts: list[uuid.UUID], seconds: float, warmup: float) -> tuple[int, list[float], int]:
    engine = db.create_engine(url, pool_size=4)
    ledger = Ledger(db.session_factory(engine))
    await ledger.start()

    async def one() -> None:
        debit, credit = _pair(accounts)
        await ledger.submit(NewTransfer(uuid.uuid4(), debit, credit, random.randint(1, 100), "USDT", "bench"))

    try:
        return await measured(seconds, warmup, one)
    finally:
        await ledger.stop()
        await engine.dispose()


def api(
    url: str, accounts: list[uuid.UUID], seconds: int, warmup: int, run: int, logs: Path, batch: int
) -> tuple[float, float, float, int]:
    """(transfers/s, p50 and p99 ms per request of the measured run, transfers made in both runs)."""
    port = free_port()
    exchange = f"tablium.events.bench-{run}-{batch}"
    env = {
        **os.environ,
        "TABLIUM_ENVIRONMENT": "test",
        "TABLIUM_LOG_LEVEL": "WARNING",
        "TABLIUM_WALLET_DATABASE_URL": url,
        "TABLIUM_WALLET_CONSUME_EVENTS": "false",
        "TABLIUM_EVENTS_EXCHANGE": exchange,
    }
    server = subprocess.Popen(
        [str(BIN / "tablium-wallet"), "serve", "--port", str(port)],
        env=env,
        stdout=(logs / f"wallet-{batch}.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"bench: the wallet did not start; see {logs / f'wallet-{batch}.log'}")
            try:
                if httpx.get(f"{base}/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        # As the event service (the wallet takes transfers from it and the lobby only), with its development
        # key; one token for the whole run, so it lives as long as a verifier allows.
        token = ServiceTokens.development("event", ttl_seconds=MAX_SERVICE_TOKEN_TTL_S).token("wallet")
        warm, _, _, _ = _wrk(base, accounts, warmup, 2 * run, token, logs, batch)
        made, elapsed, p50, p99 = _wrk(base, accounts, seconds, 2 * run + 1, token, logs, batch)
        return made / elapsed, p50, p99, warm + made
    finally:
        server.terminate()
        server.wait(timeout=20)
        asyncio.run(_delete_exchange(exchange))


def _wrk(
    base: str, accounts: list[uuid.UUID], seconds: int, run: int, token: str, logs: Path, batch: int
) -> tuple[int, float, float, float]:
    """One wrk run (``run`` keeps its transfer ids apart from other runs'): (transfers made, seconds,
    p50 and p99 ms per request)."""
    script = logs / f"transfers-{batch}-{run}.lua"
    script.write_text(
        WRK_SCRIPT % {"accounts": ",".join(f'"{a}"' for a in accounts), "run": run, "token": token, "batch": batch}
    )
    wrk = subprocess.run(
        ["wrk", "-t2", f"-c{CLIENTS}", f"-d{seconds}s", "--latency", "-s", str(script), base],
        check=True,
        capture_output=True,
        text=True,
    )
    out = wrk.stdout
    if "transfers made" not in out:
        raise SystemExit(f"bench: wrk's script failed:\n{out}\n{wrk.stderr}")
    made = int(re.search(r"transfers made: (\d+)", out).group(1))  # type: ignore[union-attr]
    refused = int(re.search(r"transfers refused: (\d+)", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors or refused:
        raise SystemExit(f"bench: the API refused {refused} transfers:\n{out}")
    elapsed = float(re.search(r"requests in ([\d.]+)s", out).group(1))  # type: ignore[union-attr]

    def percentile(p: str) -> float:
        value, unit = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    return made, elapsed, percentile("50"), percentile("99")


async def _delete_exchange(name: str) -> None:
    import aio_pika

    connection = await aio_pika.connect("amqp://guest:guest@127.0.0.1:5672/")
    async with connection:
        channel = await connection.channel()
        await channel.exchange_delete(name)


async def check_invariants(url: str) -> int:
    """Raise if any ledger invariant is broken; return the number of transfers."""
    engine = db.create_engine(url, pool_size=1)
    try:
        async with engine.connect() as conn:
            sums = (
                await conn.execute(
                    text(
                        "SELECT count(*) FILTER (WHERE cp <> dp OR cpe <> dpe) FROM (SELECT asset, "
                        "sum(credits_posted) cp, sum(debits_posted) dp, sum(credits_pending) cpe, "
                        "sum(debits_pending) dpe FROM accounts GROUP BY asset) s"
                    )
                )
            ).scalar_one()
            negative = (
                await conn.execute(
                    text(
                        "SELECT count(*) FROM accounts WHERE flags & 1 = 1 "
                        "AND debits_posted + debits_pending > credits_posted"
                    )
                )
            ).scalar_one()
            # Counters derived from the transfers (posted: single-phase and post transfers).
            drift = (
                await conn.execute(
                    text(
                        "WITH moves AS (SELECT debit_account_id AS a, -amount AS v FROM transfers WHERE flags & 2 = 0 "
                        "AND flags & 8 = 0 UNION ALL SELECT credit_account_id, amount FROM transfers "
                        "WHERE flags & 2 = 0 AND flags & 8 = 0) SELECT count(*) FROM accounts acc "
                        "LEFT JOIN (SELECT a, sum(v) AS total FROM moves GROUP BY a) m ON m.a = acc.id "
                        "WHERE coalesce(m.total, 0) <> acc.credits_posted - acc.debits_posted"
                    )
                )
            ).scalar_one()
            transfers = (await conn.execute(text("SELECT count(*) FROM transfers WHERE code = 'bench'"))).scalar_one()
    finally:
        await engine.dispose()
    if sums or negative or drift:
        raise SystemExit(f"bench: invariants broken: sums {sums}, negative {negative}, drift {drift}")
    return int(transfers)


def pct(latencies: list[float], q: float) -> float:
    return statistics.quantiles(latencies, n=100)[int(q) - 1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=2, help="seconds of load before each measured run")
    parser.add_argument("--batch", type=int, default=BATCH, help="transfers per request of the batch API run")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("bench: wrk is needed (Debian: apt-get install wrk)")
    run = os.getpid()
    logs = Path(tempfile.mkdtemp(prefix="tablium-wallet-bench-"))
    urls = {name: f"{PG}/bench_{run}_wallet_{name}" for name in ("naive", "domain", "api", "api_batch")}
    rows: list[tuple[str, float, float, float, int]] = []
    try:
        for name, url in urls.items():
            accounts = asyncio.run(prepare(url))
            if name.startswith("api"):
                batch = args.batch if name == "api_batch" else 1
                rps, p50, p99, done = api(url, accounts, args.seconds, args.warmup, run, logs, batch)
            else:
                runner = naive if name == "naive" else domain
                measured_done, latencies, warm = asyncio.run(runner(url, accounts, args.seconds, args.warmup))
                rps, p50, p99 = measured_done / args.seconds, pct(latencies, 50), pct(latencies, 99)
                done = warm + measured_done
            transfers = asyncio.run(check_invariants(url))
            # wrk stops counting at its deadline while the server may still finish requests in flight.
            if transfers < done or (not name.startswith("api") and transfers != done):
                raise SystemExit(f"bench: {name} counted {done} transfers but the ledger holds {transfers}")
            rows.append((name, rps, p50, p99, transfers))
    finally:
        for url in urls.values():
            asyncio.run(db.drop_database(url))
    labels = {
        "naive": "naive baseline (one transaction per transfer, plain UPDATEs)",
        "domain": "domain layer (batching Ledger, in process)",
        "api": "internal API, 1 per request (POST /internal/v1/transfers)",
        "api_batch": f"internal API, {args.batch} per request (POST /internal/v1/transfers/batch)",
    }
    baseline = rows[0][1]
    print(
        f"\nwallet: {CLIENTS} concurrent clients, {HOT_ACCOUNTS} hot accounts, "
        f"{args.seconds} s per run after {args.warmup} s of warm-up"
    )
    print("(API runs: granian, one worker, outbox relay publishing; wrk; latency is per request)\n")
    print(f"{'run':<72} {'transfers/s':>12} {'p50 ms':>8} {'p99 ms':>8} {'x naive':>8} {'invariants':>11}")
    for name, rps, p50, p99, _ in rows:
        print(f"{labels[name]:<72} {rps:>12,.0f} {p50:>8.2f} {p99:>8.2f} {rps / baseline:>8.2f} {'hold':>11}")
    print("\n(checked after each run: credits = debits per asset, no flagged account negative, counters = sums of")
    print(f" transfers; transfers stored: {', '.join(f'{r[0]} {r[4]:,}' for r in rows)})")


if __name__ == "__main__":
    main()
