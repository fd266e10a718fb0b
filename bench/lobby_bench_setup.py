"""Set-up of the lobby benchmark (bench/lobby_bench.py): user tokens signed with the development key and
served as JWKS, tables opened through the lobby's admin API, players funded in the wallet and seated.

Two ways to seat them. ``api``: every player funded and seated through the APIs (a real buy-in saga each:
~25 HTTP calls a table). ``bulk`` (the default): per table, the escrow is funded with five buy-ins by one
transfer from the house and five seats are written straight into the lobby's database (so escrow = Σ
stacks still holds and rake transfers work), then the sixth player sits down through the API, which
makes the lobby deal: ~6 calls a table. The benchmark measures play, not sitting down.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from jwt.algorithms import RSAAlgorithm
from sqlalchemy import text

from tablium_kit import db
from tablium_kit.auth import ServiceTokens

ROOT = Path(__file__).resolve().parents[1]
KID = "lobby-bench-key"
SIGNING_KEY = load_pem_private_key(
    (ROOT / "services" / "player" / "dev-keys" / "jwt-dev-private.pem").read_bytes(), password=None
)
BUY_IN = 200  # 100 big blinds at 1/2
IN_FLIGHT = 64  # set-up requests at a time


def user_token(subject: str, roles: list[str]) -> str:
    now = int(time.time())
    claims = {"iss": "tablium-player", "aud": "tablium", "sub": subject, "iat": now, "exp": now + 7200,
              "typ": "access", "roles": roles, "jti": uuid.uuid4().hex}  # fmt: skip
    return jwt.encode(claims, SIGNING_KEY, algorithm="RS256", headers={"kid": KID})  # type: ignore[arg-type]


def serve_jwks() -> str:
    """The bench's signing key as a JWKS document, as the player service publishes its keys."""
    jwk = json.loads(RSAAlgorithm.to_jwk(SIGNING_KEY.public_key()))  # type: ignore[arg-type]
    body = json.dumps({"keys": [{**jwk, "kid": KID, "use": "sig", "alg": "RS256"}]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}/jwks"


# -- set-up through the APIs --------------------------------------------------------------------------


async def gather_limited(coros: list[Any], limit: int = IN_FLIGHT) -> list[Any]:
    gate = asyncio.Semaphore(limit)

    async def one(coro: Any) -> Any:
        async with gate:
            return await coro

    return await asyncio.gather(*(one(c) for c in coros))


async def retrying(call: Any, ok: tuple[int, ...]) -> httpx.Response:
    for attempt in range(10):
        try:
            response: httpx.Response = await call()
        except httpx.TransportError:
            await asyncio.sleep(0.2 * (attempt + 1))
            continue
        if response.status_code in ok:
            return response
        if attempt and response.status_code == 409 and "already have a seat" in response.text:
            return response  # the earlier attempt sat down; its answer was lost
        if response.status_code < 500 and response.status_code != 429:
            raise SystemExit(f"bench: set-up refused: {response.status_code} {response.text[:300]}")
        await asyncio.sleep(0.2 * (attempt + 1))
    raise SystemExit("bench: set-up kept failing")


SEATS = text(
    """
    INSERT INTO seats (id, table_id, seat_no, player_id, stack, status, time_bank_ms)
    SELECT gen_random_uuid(), t.id, s.seat_no, s.player_id, :stack, 'seated', t.time_bank_s * 1000
    FROM unnest(CAST(:tables AS uuid[]), CAST(:seats AS int[]), CAST(:players AS uuid[]))
         AS s(table_id, seat_no, player_id)
    JOIN cash_tables t ON t.id = s.table_id
    """
)


async def set_up_tables(lobby: str, wallet: str, n: int, database_url: str, bulk: bool = True) -> list[dict[str, Any]]:
    """N open tables of six funded, seated players (through the lobby's and the wallet's APIs, or in bulk)."""
    admin = {"Authorization": f"Bearer {user_token(str(uuid.uuid4()), ['player', 'admin'])}"}
    tokens = ServiceTokens.development("lobby")
    engine = db.create_engine(database_url, pool_size=1)  # one statement: the shared server's connections are few
    async with httpx.AsyncClient(timeout=30) as http:

        async def wallet_call(method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
            headers = {"Authorization": f"Bearer {tokens.token('wallet')}", "Idempotency-Key": uuid.uuid4().hex}
            response = await retrying(lambda: http.request(method, wallet + path, json=body, headers=headers),
                                      (200, 201))  # fmt: skip
            result: dict[str, Any] = response.json()
            return result

        house = (await wallet_call("PUT", "/internal/v1/accounts",
                                   {"owner": "house", "kind": "house_adjustments", "asset": "USDT"}))["id"]  # fmt: skip

        async def open_table(i: int) -> dict[str, Any]:
            body = {"name": f"bench {i}", "small_blind": "1", "big_blind": "2", "seats": 6}
            response = await retrying(lambda: http.post(f"{lobby}/api/v1/tables", json=body, headers=admin), (201,))
            return {"id": response.json()["id"], "players": []}

        async def seat_player(table: dict[str, Any], seat: int) -> None:
            player = str(uuid.uuid4())
            account = await wallet_call("PUT", "/internal/v1/accounts",
                                        {"owner": f"player:{player}", "kind": "player", "asset": "USDT"})  # fmt: skip
            await wallet_call("POST", "/internal/v1/transfers",
                              {"id": str(uuid.uuid4()), "debit_account_id": house, "credit_account_id": account["id"],
                               "amount": str(BUY_IN * 50), "asset": "USDT", "code": "test_funding"})  # fmt: skip
            token = user_token(player, ["player"])
            sit = {"seat": seat, "buy_in": str(BUY_IN)}
            await retrying(
                lambda: http.post(f"{lobby}/api/v1/tables/{table['id']}/seats", json=sit,
                                  headers={"Authorization": f"Bearer {token}"}),
                (201,),
            )  # fmt: skip
            table["players"].append({"id": player, "token": token, "seat": seat})

        async def seat_five(table: dict[str, Any]) -> None:
            """Seats 0-4: their chips moved into the escrow by one transfer (the seats are written below)."""
            owner = f"table:{table['id']}"
            escrow = await wallet_call("PUT", "/internal/v1/accounts",
                                       {"owner": owner, "kind": "table_escrow", "asset": "USDT"})  # fmt: skip
            await wallet_call("POST", "/internal/v1/transfers",
                              {"id": str(uuid.uuid4()), "debit_account_id": house, "credit_account_id": escrow["id"],
                               "amount": str(BUY_IN * 5), "asset": "USDT", "code": "test_funding"})  # fmt: skip
            table["players"] += [{"id": str(uuid.uuid4()), "seat": seat} for seat in range(5)]

        try:
            tables = await gather_limited([open_table(i) for i in range(n)])
            if bulk:
                await gather_limited([seat_five(table) for table in tables])
                seated = [(uuid.UUID(t["id"]), p["seat"], uuid.UUID(p["id"])) for t in tables for p in t["players"]]
                columns = {"tables": [r[0] for r in seated], "seats": [r[1] for r in seated],
                           "players": [r[2] for r in seated]}  # fmt: skip
                async with engine.begin() as conn:
                    await conn.execute(SEATS, {"stack": BUY_IN, **columns})
                for table in tables:
                    for player in table["players"]:
                        player["token"] = user_token(player["id"], ["player"])
                await gather_limited([seat_player(table, 5) for table in tables])
            else:
                await gather_limited([seat_player(table, seat) for table in tables for seat in range(6)])
        finally:
            await engine.dispose()
    for table in tables:
        table["players"].sort(key=lambda p: p["seat"])
    return tables
