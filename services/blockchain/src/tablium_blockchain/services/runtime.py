"""The per-app chain runtime: connects in the background (the node may be down at start), then watches.

Like the kit's consumer, the service starts and answers while the node is away; ``/ready`` says why it is
not ready, and the endpoints that need the chain answer 503 until it is connected.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TypeAlias

import structlog
from litestar.datastructures import State
from litestar.di import NamedDependency
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tablium_blockchain.clients.wallet import Wallet
from tablium_blockchain.domain.addresses import MasterKey
from tablium_blockchain.services.chain import Chain, WrongChain, connect
from tablium_blockchain.services.sender import Sender
from tablium_blockchain.services.sweeper import Sweeper
from tablium_blockchain.services.watcher import Watcher
from tablium_blockchain.settings import BlockchainSettings
from tablium_kit.errors import ServiceUnavailable
from tablium_kit.health import NotReady

log = structlog.get_logger("tablium.blockchain")


class ChainRuntime:
    def __init__(
        self, settings: BlockchainSettings, sessions: async_sessionmaker[AsyncSession], wallet: Wallet
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.wallet = wallet
        self.master = MasterKey(
            settings.master_mnemonic, deposit_path=settings.deposit_path, hot_wallet_path=settings.hot_wallet_path
        )
        self.chain: Chain | None = None
        self.watcher: Watcher | None = None
        self.sender: Sender | None = None
        self.sweeper: Sweeper | None = None
        self.reason = "connecting"
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._keep_connecting(), name="chain-connect")

    async def _keep_connecting(self, max_delay_s: float = 10.0) -> None:
        delay = 0.2
        while self.chain is None:
            try:
                chain = await connect(self.settings, self.sessions, self.master)
            except WrongChain as exc:
                self.reason = str(exc)  # a configuration error: no retry will fix it
                log.error("wrong chain", error=self.reason)
                return
            except Exception as exc:
                self.reason = f"{type(exc).__name__}: {exc}"
                log.warning("chain not reachable", error=self.reason, retry_in_s=delay)
                await asyncio.sleep(delay)
                delay = min(max_delay_s, delay * 2)
                continue
            self.chain = chain
            self.watcher = Watcher(chain, self.sessions, self.settings)
            self.sender = Sender(chain, self.sessions, self.settings, self.wallet)
            if self.settings.watch:
                await self.watcher.start()
            self.sweeper = Sweeper(chain, self.sessions, self.settings)
            if self.settings.send:
                await self.sender.start()
            if self.settings.sweep:
                await self.sweeper.start()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.watcher is not None:
            await self.watcher.stop()
        if self.sender is not None:
            await self.sender.stop()
        if self.sweeper is not None:
            await self.sweeper.stop()
        if self.chain is not None:
            await self.chain.close()
        await self.wallet.aclose()

    async def check(self) -> None:
        """Readiness: connected, and the node answers now."""
        if self.chain is None:
            raise NotReady(self.reason)
        await self.chain.w3.eth.block_number

    def connected(self) -> Chain:
        if self.chain is None:
            raise ServiceUnavailable(f"the chain is not connected yet ({self.reason})")
        return self.chain


def provide_runtime(state: State) -> ChainRuntime:
    runtime: ChainRuntime = state.chain_runtime
    return runtime


ChainRuntimeDep: TypeAlias = NamedDependency[ChainRuntime]
