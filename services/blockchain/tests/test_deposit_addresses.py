"""Deposit addresses: derived from the master key, one per player and asset, never anyone else's."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio
import httpx
import pytest
from eth_account import Account
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from tablium_blockchain.domain.addresses import MasterKey, payment_uri
from tablium_blockchain.services.chain import Chain

from tablium_kit import db
from tablium_kit.localchain import DEV_MNEMONIC, LocalChain
from tablium_kit.messaging.testing import AmqpNames
from tablium_kit.private_infra import free_port

from .conftest import KID, SIGNING_KEY, address_of, bearer

BIN = Path(sys.executable).parent


def test_derivation_follows_bip44_from_the_master_key() -> None:
    Account.enable_unaudited_hdwallet_features()
    master = MasterKey(DEV_MNEMONIC, deposit_path="m/44'/60'/1'/0", hot_wallet_path="m/44'/60'/0'/0/0")
    for index in (0, 1, 7):
        expected = Account.from_mnemonic(DEV_MNEMONIC, account_path=f"m/44'/60'/1'/0/{index}").address
        assert master.deposit_address(index) == expected
    # The hot wallet is anvil's funded account 0 in development; no deposit address is one of anvil's accounts.
    assert master.hot_wallet().address == Account.from_mnemonic(DEV_MNEMONIC).address
    anvil_accounts = {
        Account.from_mnemonic(DEV_MNEMONIC, account_path=f"m/44'/60'/0'/0/{i}").address for i in range(10)
    }
    assert not anvil_accounts & {master.deposit_address(i) for i in range(10)}


def test_payment_uris_are_eip_681() -> None:
    address, token = "0x" + "ab" * 20, "0x" + "cd" * 20
    checksummed = Account.from_key("0x" + "11" * 32).address  # any checksummed address
    assert payment_uri(asset="ETH", address=checksummed, chain_id=1, token=None) == f"ethereum:{checksummed}@1"
    uri = payment_uri(asset="USDT", address=address, chain_id=31337, token=token)
    assert uri.startswith("ethereum:0x")
    assert uri.endswith(f"@31337/transfer?address={uri.split('=')[1]}")
    assert uri.split("=")[1].lower() == address


async def test_one_address_per_player_and_asset(client: AsyncTestClient[Litestar], chain: Chain) -> None:
    alice, bob = str(uuid.uuid4()), str(uuid.uuid4())
    response = await client.get("/api/v1/deposits/address", params={"asset": "USDT"}, headers=bearer(alice))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["chain_id"] == chain.chain_id
    assert body["token"] == chain.tokens["USDT"]
    assert body["decimals"] == 6
    assert body["uri"] == f"ethereum:{chain.tokens['USDT']}@{chain.chain_id}/transfer?address={body['address']}"
    assert await address_of(client, alice) == body["address"]  # the same every time
    eth = (await client.get("/api/v1/deposits/address", params={"asset": "ETH"}, headers=bearer(alice))).json()
    assert eth["uri"] == f"ethereum:{eth['address']}@{chain.chain_id}"
    assert eth["token"] is None
    assert eth["decimals"] == 18
    assert len({body["address"], eth["address"], await address_of(client, bob)}) == 3


@pytest.mark.parametrize(
    "params", [{}, {"asset": "usdt"}, {"asset": "BTC"}, {"asset": ""}, {"asset": "USDT\n"}, {"asset": "USDT\x00"}]
)
async def test_bad_asset_is_a_problem(client: AsyncTestClient[Litestar], params: dict[str, str]) -> None:
    response = await client.get("/api/v1/deposits/address", params=params, headers=bearer(str(uuid.uuid4())))
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_only_players_have_addresses(client: AsyncTestClient[Litestar]) -> None:
    assert (await client.get("/api/v1/deposits/address", params={"asset": "ETH"})).status_code == 401
    response = await client.get("/api/v1/deposits/address", params={"asset": "ETH"}, headers=bearer("not-a-uuid"))
    assert response.status_code in (401, 403), response.text
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_parallel_first_requests_over_http_give_one_address(
    make_database: Callable[[str], Awaitable[str]],
    amqp_names: AmqpNames,
    local_chain: LocalChain,
    tmp_path: Path,
) -> None:
    """Concurrent first requests of one player race on the (player, asset) key: all get the one address."""
    from cryptography.hazmat.primitives import serialization

    port, database_url = free_port(), await make_database("blockchain_live")
    jwks = tmp_path / "public.pem"
    jwks.write_bytes(
        SIGNING_KEY.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    env = {
        **os.environ,
        "TABLIUM_ENVIRONMENT": "test",
        "TABLIUM_BLOCKCHAIN_PORT": str(port),
        "TABLIUM_BLOCKCHAIN_DATABASE_URL": database_url,
        "TABLIUM_BLOCKCHAIN_RPC_URL": local_chain.url,
        "TABLIUM_BLOCKCHAIN_WATCH": "false",
        "TABLIUM_BLOCKCHAIN_SEND": "false",
        "TABLIUM_BLOCKCHAIN_SWEEP": "false",
        "TABLIUM_EVENTS_EXCHANGE": amqp_names.exchange,
    }
    jwks_server = _JwksServer(KID)
    env["TABLIUM_JWKS_URL"] = jwks_server.url
    process = _serve(env, tmp_path / "service.log")
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            await _wait_ready(http, process, tmp_path / "service.log")
            player = str(uuid.uuid4())
            headers = bearer(player)
            answers = await asyncio.gather(
                *[http.get("/api/v1/deposits/address", params={"asset": "USDT"}, headers=headers) for _ in range(16)]
            )
        assert {r.status_code for r in answers} == {200}, [r.text for r in answers]
        assert len({r.json()["address"] for r in answers}) == 1
        engine = db.create_engine(database_url, pool_size=1)
        try:
            async with engine.connect() as connection:
                rows = await connection.scalar(
                    text("SELECT count(*) FROM deposit_addresses WHERE player_id = :p"), {"p": uuid.UUID(player)}
                )
        finally:
            await engine.dispose()
        assert rows == 1
    finally:
        process.terminate()
        process.wait(timeout=30)
        jwks_server.stop()


async def _wait_ready(http: httpx.AsyncClient, process: subprocess.Popen[bytes], log: Path) -> None:
    with anyio.fail_after(300):  # a loaded machine imports web3 slowly
        while True:
            if process.poll() is not None:
                pytest.fail(f"the service exited: see {log}")
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get("/ready")).status_code == 200:
                    return
            await asyncio.sleep(0.1)


def _serve(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as output:
        return subprocess.Popen([str(BIN / "tablium-blockchain"), "serve"], env=env, stdout=output, stderr=output)


class _JwksServer:
    """Serves the test signing key as a JWKS, as the player service would (a thread on a free port)."""

    def __init__(self, kid: str) -> None:
        import json
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        from jwt.algorithms import RSAAlgorithm

        jwk = json.loads(RSAAlgorithm.to_jwk(SIGNING_KEY.public_key()))
        body = json.dumps({"keys": [{**jwk, "kid": kid, "alg": "RS256", "use": "sig"}]}).encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/jwks"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
