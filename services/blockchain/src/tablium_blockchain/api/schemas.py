"""Response bodies of the blockchain service."""

from __future__ import annotations

from datetime import datetime

import msgspec

from tablium_blockchain.domain.assets import Asset


class DepositAddressOut(msgspec.Struct, kw_only=True):
    asset: Asset
    chain_id: int
    # Checksummed (EIP-55).
    address: str
    # EIP-681, for a QR code: ETH to the address, or the token's transfer to it.
    uri: str
    # The token contract (checksummed); null for ETH.
    token: str | None
    decimals: int
    # Blocks a deposit needs (its own included) before it is credited.
    confirmations: int


class ChainStatusOut(msgspec.Struct, kw_only=True):
    chain_id: int
    head_block: int
    # The next block the watcher scans (null before its first poll).
    next_block: int | None
    lag_blocks: int
    # Seconds between the head's timestamp and the last scanned block's.
    lag_s: float | None
    # Wei, as decimal strings.
    base_fee_per_gas: str
    max_priority_fee_per_gas: str
    hot_wallet: str
    # Asset -> balance in its minor unit, a decimal string.
    hot_wallet_balances: dict[str, str]
    deposits_waiting: int
    oldest_waiting_deposit_at: datetime | None
    watcher_error: str | None
