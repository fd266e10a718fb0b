"""The blockchain service: on-chain deposits (and withdrawals) settled into the wallet, reorg-safe."""

from __future__ import annotations

from pathlib import Path

from litestar import Litestar
from litestar.di import Provide

from tablium_blockchain.api.chain import ChainController
from tablium_blockchain.api.deposits import DepositController
from tablium_blockchain.api.withdrawals import WithdrawalController
from tablium_blockchain.clients.wallet import Wallet
from tablium_blockchain.db.models import MESSAGING
from tablium_blockchain.services.runtime import ChainRuntime, provide_runtime
from tablium_blockchain.settings import BlockchainSettings, load_settings
from tablium_kit import db
from tablium_kit.app import ServiceDefinition, create_service_app
from tablium_kit.auth import KeySource

MIGRATIONS = Path(__file__).parent / "db" / "migrations"


def create_app(settings: BlockchainSettings | None = None, *, key_source: KeySource | None = None) -> Litestar:
    settings = settings or load_settings()

    async def start_chain(app: Litestar) -> None:
        wallet = Wallet(settings.wallet_url, app.state.service_tokens)
        runtime = ChainRuntime(settings, db.session_factory(app.state.db_engine_instance), wallet)
        app.state.chain_runtime = runtime
        app.state.readiness.add("chain", runtime.check)
        await runtime.start()

    async def stop_chain(app: Litestar) -> None:
        await app.state.chain_runtime.stop()

    return create_service_app(
        ServiceDefinition(
            settings=settings,
            title="Tablium blockchain service",
            route_handlers=[DepositController, WithdrawalController, ChainController],
            migrations_dir=MIGRATIONS,
            messaging=MESSAGING,
            key_source=key_source,
            on_startup=[start_chain],
            on_shutdown=[stop_chain],
            dependencies={"chain_runtime": Provide(provide_runtime, sync_to_thread=False)},
            signature_namespace={"ChainRuntime": ChainRuntime},
        )
    )
