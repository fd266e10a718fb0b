"""``tablium-gateway``: serve kong.yml on one machine, with granian.

    tablium-gateway --config gateway/kong.yml --port 8000 --local
    tablium-gateway --config gateway/kong.yml --upstream player=http://127.0.0.1:8001

kong.yml names upstreams by their compose/Kubernetes DNS names (http://player:8000);
``--local`` points every service at its local development port instead, and
``--upstream`` points one service anywhere. Granian runs each worker in its own
process, so the options reach the app factory through environment variables.
"""

from __future__ import annotations

import argparse
import gc
import os
from collections.abc import Sequence

from tablium_gateway.app import UPSTREAM_CONNECTIONS, Gateway
from tablium_gateway.config import ConfigError, load_config

# Each service's port when the whole platform runs on one machine.
LOCAL_UPSTREAMS: dict[str, str] = {
    "player": "http://127.0.0.1:8001",
    "club": "http://127.0.0.1:8002",
    "rakeback": "http://127.0.0.1:8003",
    "event": "http://127.0.0.1:8004",
    "lobby": "http://127.0.0.1:8005",
    "wallet": "http://127.0.0.1:8006",
    "blockchain": "http://127.0.0.1:8007",
}

ENV_CONFIG = "TABLIUM_GATEWAY_CONFIG"
ENV_UPSTREAMS = "TABLIUM_GATEWAY_UPSTREAMS"
ENV_DISABLED_PLUGINS = "TABLIUM_GATEWAY_DISABLED_PLUGINS"
ENV_STATUS_PORT = "TABLIUM_GATEWAY_STATUS_PORT"
ENV_UPSTREAM_CONNECTIONS = "TABLIUM_GATEWAY_UPSTREAM_CONNECTIONS"


def parse_upstreams(values: Sequence[str]) -> dict[str, str]:
    upstreams: dict[str, str] = {}
    for value in values:
        name, sep, url = value.partition("=")
        if not sep or not name or not url:
            raise ConfigError(f"--upstream wants name=url, got {value!r}")
        upstreams[name.strip()] = url.strip()
    return upstreams


def build_gateway(
    config_path: str,
    upstreams: dict[str, str] | None = None,
    disabled_plugins: set[str] | None = None,
    upstream_connections: int = UPSTREAM_CONNECTIONS,
) -> Gateway:
    config = load_config(config_path)
    if upstreams:
        config = config.with_upstreams(upstreams)
    if disabled_plugins:
        config = config.without_plugins(disabled_plugins)
    return Gateway(config, max_connections=upstream_connections)


def create_app_from_env() -> Gateway:
    """Granian's app factory (one call per worker process)."""
    upstreams = parse_upstreams([v for v in os.environ.get(ENV_UPSTREAMS, "").split(",") if v])
    disabled = {v.strip() for v in os.environ.get(ENV_DISABLED_PLUGINS, "").split(",") if v.strip()}
    connections = int(os.environ.get(ENV_UPSTREAM_CONNECTIONS, UPSTREAM_CONNECTIONS))
    gateway = build_gateway(os.environ[ENV_CONFIG], upstreams, disabled, connections)
    status_port = os.environ.get(ENV_STATUS_PORT)
    if status_port:
        from prometheus_client import start_http_server

        start_http_server(int(status_port), addr="127.0.0.1", registry=gateway.metrics.registry)
    # What start-up built lives as long as the process: out of the collector's sight, so that a full
    # collection (rare: a proxied request leaves no cycles) scans only what came later (ADR 0004).
    gc.collect()
    gc.freeze()
    return gateway


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="tablium-gateway", description="Serve kong.yml locally.")
    parser.add_argument("--config", default="gateway/kong.yml", help="Kong declarative config")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--local", action="store_true", help="point every service at its 127.0.0.1 dev port")
    parser.add_argument(
        "--upstream", action="append", default=[], metavar="NAME=URL", help="point one service elsewhere"
    )
    parser.add_argument(
        "--disable-plugin",
        action="append",
        default=[],
        metavar="NAME",
        help="switch a plugin off everywhere (e.g. rate-limiting while benchmarking)",
    )
    parser.add_argument("--status-port", type=int, help="serve Prometheus /metrics here (one worker only)")
    parser.add_argument(
        "--upstream-connections",
        type=int,
        default=UPSTREAM_CONNECTIONS,
        metavar="N",
        help=f"requests in flight to one service per worker; more wait in the gateway (default {UPSTREAM_CONNECTIONS})",
    )
    args = parser.parse_args(argv)
    if args.status_port and args.workers != 1:
        parser.error("--status-port needs --workers 1 (metrics are per process)")
    if args.upstream_connections < 1:
        parser.error("--upstream-connections must be at least 1")

    upstreams = dict(LOCAL_UPSTREAMS) if args.local else {}
    try:
        upstreams.update(parse_upstreams(args.upstream))
        # Fail here, with a readable message, rather than in every worker.
        build_gateway(args.config, upstreams, set(args.disable_plugin))
    except (ConfigError, OSError) as exc:
        parser.error(str(exc))

    os.environ[ENV_CONFIG] = os.path.abspath(args.config)
    os.environ[ENV_UPSTREAMS] = ",".join(f"{k}={v}" for k, v in upstreams.items())
    os.environ[ENV_DISABLED_PLUGINS] = ",".join(args.disable_plugin)
    os.environ[ENV_UPSTREAM_CONNECTIONS] = str(args.upstream_connections)
    if args.status_port:
        os.environ[ENV_STATUS_PORT] = str(args.status_port)

    from granian import Granian

    Granian(
        "tablium_gateway.cli:create_app_from_env",
        address=args.host,
        port=args.port,
        interface="asgi",  # type: ignore[arg-type]
        workers=args.workers,
        factory=True,
        loop="uvloop",  # type: ignore[arg-type]
        log_access=False,
    ).serve()
