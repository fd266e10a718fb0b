"""Blockchain service settings (environment prefix ``TABLIUM_BLOCKCHAIN_``)."""

from __future__ import annotations

from typing import ClassVar

import msgspec

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

    # -- withdrawals (ADR 0010) --
    # The wallet's internal API: a withdrawal's hold (a pending transfer player -> chain clearing).
    wallet_url: str = "http://127.0.0.1:8006"
    # Per asset, in its minor unit (JSON in the environment); an asset missing has no bound but 2^128-1.
    withdrawal_min: dict[str, int] = msgspec.field(default_factory=lambda: {"USDT": 1_000_000, "ETH": 10**15})
    withdrawal_max: dict[str, int] = msgspec.field(
        default_factory=lambda: {"USDT": 100_000 * 10**6, "ETH": 50 * 10**18}
    )
    # The sender: a pass this often; a transaction unmined this long is re-signed with higher fees (at least
    # the 10 % nodes require to replace one; fee_bump_percent).
    send_interval_s: float = 1.0
    replace_after_s: float = 120.0
    fee_bump_percent: int = 25
    # A withdrawal whose transaction the node refuses (other than "already known": insufficient funds, a fee
    # past its caps, invalid) at least this many times over at least this long is given up: failed (the wallet
    # voids its hold) and its nonce filled so later ones proceed; alerted (ADR 0010).
    refusals_before_failing: int = 10
    refused_for_s_before_failing: float = 300.0
    # A withdrawal left 'requested' this long (its request died before the wallet answered) is asked again.
    requested_retry_after_s: float = 30.0
    # Tests drive the sender one pass at a time; the app then runs no loop.
    send: bool = True
    # Sweeping deposit addresses into the hot wallet: a pass this often; an address is swept once it holds
    # at least this much of an asset (net of gas for ETH). Tests drive it one pass at a time (sweep=false).
    sweep: bool = True
    sweep_interval_s: float = 10.0
    sweep_min: dict[str, int] = msgspec.field(default_factory=lambda: {"USDT": 1_000_000, "ETH": 10**16})
    # Test hook: the process SIGKILLs itself at this step of sending (signed, recorded, broadcast...).
    # Refused in production.
    crash_at: str = ""

    dev_secrets: ClassVar[dict[str, object]] = {**ServiceSettings.dev_secrets, "master_mnemonic": DEV_MNEMONIC}

    def check_secrets(self) -> None:
        super().check_secrets()
        if self.is_production and not self.usdt_address:
            raise InsecureSettingsError("blockchain: production names the USDT contract (usdt_address)")
        if self.is_production and self.crash_at:
            raise InsecureSettingsError("blockchain: crash_at is a test hook")
        if self.reorg_window < self.confirmations:
            raise ValueError("blockchain: reorg_window must be at least confirmations")


def load_settings() -> BlockchainSettings:
    return BlockchainSettings.from_env("blockchain")
