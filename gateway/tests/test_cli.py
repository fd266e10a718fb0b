"""The console script: granian serving kong.yml for real, over TCP."""

from __future__ import annotations

import asyncio
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from tablium_gateway.cli import LOCAL_UPSTREAMS, main, parse_upstreams
from tablium_gateway.config import ConfigError, load_config

from .conftest import EchoUpstream, assert_problem, make_token

SCRIPT = Path(sys.executable).parent / "tablium-gateway"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
async def served(kong_yml: Path, upstream: EchoUpstream, tmp_path: Path) -> AsyncIterator[str]:
    port = _free_port()
    log = tmp_path / "gateway.log"
    with log.open("wb") as sink:
        process = await asyncio.create_subprocess_exec(
            str(SCRIPT),
            *("--config", str(kong_yml), "--port", str(port), "--upstream", f"player={upstream.url}"),
            stdout=sink,
            stderr=sink,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base) as client:
            for _ in range(100):
                if process.returncode is not None:
                    pytest.fail(f"tablium-gateway exited: {log.read_text()}")
                try:
                    await client.get("/")
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
        yield base
    finally:
        process.terminate()
        await process.wait()


async def test_granian_serves_kong_yml(served: str, upstream: EchoUpstream, dev_private_key: RSAPrivateKey) -> None:
    async with httpx.AsyncClient(base_url=served) as client:
        missing = await client.get("/internal/anything")
        assert_problem(missing, 404, "no Route matched with those values")

        public = await client.get("/api/v1/players/3fa85f64-5717-4562-b3fc-2c963f66afa6")
        assert public.status_code == 200
        assert upstream.last.header("x-forwarded-for") == "127.0.0.1"
        assert upstream.last.header("x-request-id") == public.headers["x-request-id"]

        assert (await client.get("/api/v1/players/me")).status_code == 401
        token = make_token(dev_private_key)
        me = await client.get("/api/v1/players/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 200


def test_local_upstreams_cover_every_service(kong_yml: Path) -> None:
    config = load_config(kong_yml).with_upstreams(LOCAL_UPSTREAMS)
    assert {s.name: s.base_url for s in config.services} == LOCAL_UPSTREAMS


def test_upstream_overrides_are_checked(kong_yml: Path) -> None:
    assert parse_upstreams(["player=http://127.0.0.1:8001"]) == {"player": "http://127.0.0.1:8001"}
    with pytest.raises(ConfigError):
        parse_upstreams(["player"])
    with pytest.raises(ConfigError):
        load_config(kong_yml).with_upstreams({"casino": "http://127.0.0.1:1"})


def test_cli_refuses_a_bad_upstream_before_starting(kong_yml: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--config", str(kong_yml), "--upstream", "casino=http://127.0.0.1:1"])
    assert "casino" in capsys.readouterr().err


async def _chunks(total: int, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    for _ in range(total // size):
        yield b" " * size


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_an_oversized_body_gets_its_413_and_the_connection_stays_usable(
    served: str, dev_private_key: RSAPrivateKey, chunked: bool
) -> None:
    """A client still writing a big body must read the gateway's 413, not a connection reset: the gateway
    reads the rest before answering (a server closing on unread data resets the connection, and the
    client's kernel drops the 413 with it). The same client's next request then works too."""
    token = make_token(dev_private_key)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    seats = "/api/v1/tables/3fa85f64-5717-4562-b3fc-2c963f66afa6/seats"  # authenticated: reaches the size limit
    async with httpx.AsyncClient(base_url=served, timeout=30) as client:
        for _ in range(3):
            content = _chunks(4_000_000) if chunked else b"[]" * 2_000_000
            too_big = await client.post(seats, content=content, headers=headers)
            assert_problem(too_big, 413, "Request size limit exceeded")
            after = await client.get("/api/v1/players/3fa85f64-5717-4562-b3fc-2c963f66afa6")
            assert after.status_code == 200, after.text
