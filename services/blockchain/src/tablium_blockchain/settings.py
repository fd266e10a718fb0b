"""Blockchain service settings (environment prefix ``TABLIUM_BLOCKCHAIN_``)."""

from __future__ import annotations

from typing import ClassVar

from tablium_kit.localchain import DEV_MNEMONIC
from tablium_kit.settings import InsecureSettingsError, ServiceSettings


class BlockchainSettings(ServiceSettings, kw_only=True):
    port: int = 8007
    # Any EVM JSON-RPC endpoint; `make up` runs a local anvil here.
    rpc_url: str = "http://127.0.0.1:8545"
    # The chain the endpoint must serve (checked at start); None: whatever it says.
    chain_id: int | None = None
    # The environment's master key (a BIP-39 mnemonic): deposit addresses are derived from it under
    # deposit_path/<index>, the hot wallet is hot_wallet_path. The development default is anvil's
    # well-known mnemonic (the hot wallet is then anvil's funded account 0); production refuses it.
    master_mnemonic: str = DEV_MNEMONIC
    deposit_path: str = "m/44'/60'/1'/0"
    hot_wallet_path: str = "m/44'/60'/0'/0/0"
    # The USDT contract. Empty outside production: the service compiles its own token (contracts/usdt.vy)
    # and deploys it from the hot wallet on first start against a chain, then reuses it.
    usdt_address: str = ""
    # A deposit is credited once its block has this many confirmations (the block itself counts as one).
    confirmations: int = 12
    # The watcher: a poll this often, at most this many blocks per poll (get_logs over long ranges is slow).
    poll_interval_s: float = 1.0
    max_blocks_per_poll: int = 50
    # Hashes of this many recent blocks are kept to find where a reorganisation forked (>= confirmations).
    reorg_window: int = 128
    # The first block watched on a chain the service has not seen; None: the head at first start.
    start_block: int | None = None
    # Tests drive the watcher one poll at a time; the app then runs no loop.
    watch: bool = True

    dev_secrets: ClassVar[dict[str, object]] = {**ServiceSettings.dev_secrets, "master_mnemonic": DEV_MNEMONIC}

    def check_secrets(self) -> None:
        super().check_secrets()
        if self.is_production and not self.usdt_address:
            raise InsecureSettingsError("blockchain: production names the USDT contract (usdt_address)")
        if self.reorg_window < self.confirmations:
            raise ValueError("blockchain: reorg_window must be at least confirmations")


def load_settings() -> BlockchainSettings:
    return BlockchainSettings.from_env("blockchain")
