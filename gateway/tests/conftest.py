"""Fixtures: the repo's kong.yml, the player's dev keys, tokens, and a fake upstream."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

REPO = Path(__file__).resolve().parents[2]
KONG_YML = REPO / "gateway" / "kong.yml"
DEV_KEYS = REPO / "services" / "player" / "dev-keys"
ISSUER = "tablium-player"
BIG_BODY_SIZE = 1_000_000


@pytest.fixture(scope="session")
def kong_yml() -> Path:
    return KONG_YML


@pytest.fixture(scope="session")
def dev_private_key() -> RSAPrivateKey:
    key = load_pem_private_key((DEV_KEYS / "jwt-dev-private.pem").read_bytes(), password=None)
    assert isinstance(key, RSAPrivateKey)
    return key


@pytest.fixture(scope="session")
def other_private_key() -> RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def make_token(key: Any, *, algorithm: str = "RS256", ttl_s: int = 300, **claims: Any) -> str:
    now = int(time.time())
    payload = {"iss": ISSUER, "sub": "player-1", "iat": now, "exp": now + ttl_s, **claims}
    return jwt.encode({k: v for k, v in payload.items() if v is not None}, key, algorithm=algorithm)


@dataclass
class SeenRequest:
    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        values = [v for k, v in self.headers if k == name]
        return ", ".join(values) if values else None


@dataclass
class EchoUpstream:
    """An HTTP/1.1 server on 127.0.0.1 that records each request and answers it with a
    JSON echo; a query with big=1 gets BIG_BODY_SIZE bytes instead."""

    port: int = 0
    seen: list[SeenRequest] = field(default_factory=list)
    connections: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def last(self) -> SeenRequest:
        return self.seen[-1]

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                line = await reader.readline()
                if not line:
                    return
                method, target, _ = line.decode("latin-1").split(" ", 2)
                headers: list[tuple[str, str]] = []
                while True:
                    raw = await reader.readline()
                    if raw in (b"\r\n", b"\n", b""):
                        break
                    name, _, value = raw.decode("latin-1").partition(":")
                    headers.append((name.strip().lower(), value.strip()))
                named = dict(headers)
                body = b""
                if "content-length" in named:
                    body = await reader.readexactly(int(named["content-length"]))
                elif named.get("transfer-encoding", "").lower() == "chunked":
                    while True:
                        size = int((await reader.readline()).strip(), 16)
                        chunk = await reader.readexactly(size + 2)
                        if size == 0:
                            break
                        body += chunk[:-2]
                seen = SeenRequest(method, target, headers, body)
                self.seen.append(seen)
                if "big=1" in target:
                    payload = b"x" * BIG_BODY_SIZE
                else:
                    payload = json.dumps({"method": method, "target": target, "body_length": len(body)}).encode()
                # Like the kit's services, echo the request id it was given.
                request_id = f"x-request-id: {named['x-request-id']}\r\n" if "x-request-id" in named else ""
                writer.write(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                    b"set-cookie: upstream=1; Path=/\r\n"
                    + f"{request_id}content-length: {len(payload)}\r\n\r\n".encode()
                    + payload
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        finally:
            writer.close()


@pytest.fixture(scope="session")
async def upstream() -> AsyncIterator[EchoUpstream]:
    echo = EchoUpstream()
    server = await asyncio.start_server(echo.handle, "127.0.0.1", 0)
    echo.port = server.sockets[0].getsockname()[1]
    async with server:
        yield echo
        server.close()


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0  # on a minute boundary

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def assert_problem(response: httpx.Response, status: int, detail: str | None = None) -> None:
    """The gateway's own refusals look like the services' errors: problem+json, never sniffed."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["x-content-type-options"] == "nosniff"
    body = response.json()
    assert set(body) == {"type", "title", "status", "detail"}
    assert body["status"] == status
    assert body["type"].startswith("urn:tablium:problem:")
    if detail is not None:
        assert body["detail"] == detail
