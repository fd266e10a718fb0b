"""Run the whole platform locally: every service, the development gateway, demo data.

Started by ``make up``. Each service gets its own database (created and migrated),
runs under granian on its own port, and is reachable through the gateway on
:8000 exactly as Kong would route it. Ctrl-C stops everything.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx

from tablium_kit.auth import local_service_keys
from tablium_kit.localchain import LocalChain

ROOT = Path(__file__).resolve().parents[1]
RUN = ROOT / ".run"
BIN = ROOT / ".venv" / "bin"
GATEWAY_PORT = 8000
# Local ports; in Kubernetes every service listens on 8000 behind its own DNS name.
PORTS = {
    "player": 8001,
    "club": 8002,
    "rakeback": 8003,
    "event": 8004,
    "lobby": 8005,
    "wallet": 8006,
    "blockchain": 8007,
}
# The local Ethereum node (anvil) the blockchain service uses, unless TABLIUM_BLOCKCHAIN_RPC_URL names another.
CHAIN_PORT = 8545
DEMO_PASSWORD = "tablium-demo-password"
DEMO_PLAYERS = ["alice", "bob", "carol", "dave"]
LOCAL_ADDRESS_BUDGETS = {
    "TABLIUM_PLAYER_REGISTRATIONS_PER_IP": "500",  # an hour
    "TABLIUM_PLAYER_LOGIN_ATTEMPTS_PER_IP": "300",  # a minute
    "TABLIUM_PLAYER_LOGIN_FREE_FAILURES_PER_IP": "200",
}


def services() -> list[str]:
    return [name for name in PORTS if (ROOT / "services" / name / "pyproject.toml").exists()]


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"platform: {url} exited early with {process.returncode}; see {RUN / 'logs'}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"platform: {url} was not ready after {timeout_s:.0f} s; see {RUN / 'logs'}")


def start(name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    log = (RUN / "logs" / f"{name}.log").open("ab")
    # Its own process group: stopping it reaches granian's worker processes too, even
    # when the server's main process is gone before them.
    return subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True)


def signal_group(child: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.pid, sig)


def seed_demo_data(env: dict[str, str]) -> None:
    """Demo accounts: an admin, a tournament director and a few players (idempotent)."""
    accounts = [("admin", "admin"), ("director", "tournament_director")] + [(name, "player") for name in DEMO_PLAYERS]
    for username, role in accounts:
        subprocess.run(
            [
                str(BIN / "tablium-player"),
                "create-account",
                "--username",
                username,
                "--email",
                f"{username}@demo.tablium.test",
                "--password",
                DEMO_PASSWORD,
                "--role",
                role,
                "--if-missing",
            ],
            env=env,
            check=True,
            cwd=ROOT,
        )


def fund_demo_players() -> None:
    """Credit each demo player 1,000 USDT through the wallet's admin API (once: the transfer ids are fixed)."""
    player, wallet = f"http://127.0.0.1:{PORTS['player']}", f"http://127.0.0.1:{PORTS['wallet']}"

    def login(username: str) -> str:
        response = httpx.post(f"{player}/api/v1/auth/login", json={"login": username, "password": DEMO_PASSWORD})
        token: str = response.raise_for_status().json()["access_token"]
        return token

    admin = {"Authorization": f"Bearer {login('admin')}"}
    for username in DEMO_PLAYERS:
        me = httpx.get(f"{player}/api/v1/players/me", headers={"Authorization": f"Bearer {login(username)}"})
        credit = {
            "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"tablium-demo-funding:{username}:USDT")),
            "player_id": me.raise_for_status().json()["id"],
            "asset": "USDT",
            "amount": str(1_000 * 10**6),
            "reason": "demo data",
        }
        # The wallet credits registered players only, and learns of them from player.registered: the
        # just-seeded players may take a moment to reach it.
        for _ in range(100):
            response = httpx.post(f"{wallet}/api/v1/admin/wallet/credit", json=credit, headers=admin)
            if response.status_code != 404:
                break
            time.sleep(0.1)
        response.raise_for_status()


def start_bot_tables(env: dict[str, str]) -> list[subprocess.Popen[bytes]]:
    """Two demo cash tables with bots playing at them, so a newcomer sees hands being played (and can join)."""
    player, gateway = f"http://127.0.0.1:{PORTS['player']}", f"http://127.0.0.1:{GATEWAY_PORT}"
    login = httpx.post(f"{player}/api/v1/auth/login", json={"login": "admin", "password": DEMO_PASSWORD})
    admin = login.raise_for_status().json()["access_token"]
    bots: list[subprocess.Popen[bytes]] = []
    for name, small, big in (("Demo 1/2", "10000", "20000"), ("Demo 5/10", "50000", "100000")):
        table = {"name": name, "small_blind": small, "big_blind": big, "seats": 6}
        response = httpx.post(
            f"{gateway}/api/v1/tables", json=table, headers={"Authorization": f"Bearer {admin}"}, timeout=10
        )
        table_id = response.raise_for_status().json()["id"]
        argv = [str(BIN / "tablium-bots"), "play", "--table", table_id, "--count", "4", "--policy", "tag"]
        argv += ["--funds", str(100 * 10**6)]
        bots.append(
            start(f"bots-{table_id[:8]}", [*argv, "--gateway", gateway], {**env, "TABLIUM_BOTS_ADMIN_TOKEN": admin})
        )
    return bots


def start_chain(env: dict[str, str]) -> LocalChain | None:
    """A local anvil on :8545 mining a block a second (confirmations come without traffic), unless the
    environment names another node. The chain is kept in .run/chain across restarts, as the databases keep
    theirs: a new chain under old databases would repeat transaction hashes the wallet has already credited."""
    if "TABLIUM_BLOCKCHAIN_RPC_URL" in env:
        return None
    chain = LocalChain(port=CHAIN_PORT, block_time_s=1, persistent=True, directory=RUN / "chain")
    chain.start()
    env["TABLIUM_BLOCKCHAIN_RPC_URL"] = chain.url
    env.setdefault("TABLIUM_BLOCKCHAIN_CONFIRMATIONS", "3")
    return chain


def main() -> None:
    (RUN / "logs").mkdir(parents=True, exist_ok=True)
    names = services()
    env = {
        **os.environ,
        "TABLIUM_ENVIRONMENT": os.environ.get("TABLIUM_ENVIRONMENT", "development"),
        # Each service signs its service tokens with a key of its own, made now, and trusts the others' public
        # keys, as in production: one service can't speak as another here either (docs/adr/0001-service-kit.md).
        **local_service_keys(names, RUN / "keys"),
        # Every client of a local platform is 127.0.0.1 (the gateway passes it on as X-Forwarded-For): the
        # per-address budgets are sized for that, or the demo bots' accounts and a tester's few players would
        # spend a whole address's registrations for the hour. The per-account login throttle (5 free
        # failures, then a doubling wait) is untouched. Set any of them in the environment to override.
        **LOCAL_ADDRESS_BUDGETS,
        **{name: value for name, value in os.environ.items() if name in LOCAL_ADDRESS_BUDGETS},
    }
    children: list[subprocess.Popen[bytes]] = []
    demo: list[subprocess.Popen[bytes]] = []  # bots: stopped with the platform, but their exit stops nothing
    chain = start_chain(env) if "blockchain" in names else None

    def halt() -> None:
        for child in [*demo, *children]:
            signal_group(child, signal.SIGTERM)
        for child in [*demo, *children]:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=10)
            signal_group(child, signal.SIGKILL)  # whatever of its group is still there
        if chain is not None:
            chain.remove()

    def stop(*_: object) -> None:
        halt()
        sys.exit(0)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        for name in names:
            subprocess.run([str(BIN / f"tablium-{name}"), "migrate"], env=env, check=True, cwd=ROOT)
            service_env = {
                **env,
                f"TABLIUM_{name.upper()}_PORT": str(PORTS[name]),
                # The dev gateway reaches services from loopback: its X-Forwarded-For is believed.
                "TABLIUM_TRUSTED_PROXIES": env.get("TABLIUM_TRUSTED_PROXIES", '["127.0.0.1"]'),
            }
            children.append(start(name, [str(BIN / f"tablium-{name}"), "serve"], service_env))
        for name, child in zip(names, children, strict=True):
            wait_ready(f"http://127.0.0.1:{PORTS[name]}/ready", child)
        upstreams = [arg for name in names for arg in ("--upstream", f"{name}=http://127.0.0.1:{PORTS[name]}")]
        gateway = start(
            "gateway",
            [str(BIN / "tablium-gateway"), "--config", "gateway/kong.yml", "--port", str(GATEWAY_PORT), *upstreams],
            env,
        )
        children.append(gateway)
        wait_ready(f"http://127.0.0.1:{GATEWAY_PORT}/api/v1/auth/jwks", gateway)
        seed_demo_data(env)
        if "wallet" in names:
            fund_demo_players()
        if "lobby" in names and "wallet" in names:
            try:
                demo.extend(start_bot_tables(env))
            except httpx.HTTPError as exc:  # demo data only: the platform runs without it
                print(f"platform: no bot tables ({exc})", file=sys.stderr)
    except BaseException:
        # Stop what started, then let the failure through: `make up` must not end quietly with status 0.
        halt()
        raise

    print("\nTablium is running. Ctrl-C stops it.\n")
    print(f"  {'gateway':<12} http://127.0.0.1:{GATEWAY_PORT}")
    for name in names:
        base = f"http://127.0.0.1:{PORTS[name]}"
        print(f"  {name:<12} docs {base}/schema   metrics {base}/metrics   ready {base}/ready")
    if chain is not None:
        print(f"  {'chain':<12} {chain.url} (anvil, chain id {chain.chain_id}, a block a second)")
    print(f"\n  demo logins: admin, director, {', '.join(DEMO_PLAYERS)} (password: {DEMO_PASSWORD})")
    print(f"  logs: {RUN.relative_to(ROOT) / 'logs'}/\n")
    while True:
        for child in children:
            if child.poll() is not None:
                print(f"platform: a process exited with {child.returncode}; stopping", file=sys.stderr)
                halt()
                sys.exit(1)
        time.sleep(1)


if __name__ == "__main__":
    main()
