"""Response bodies of the blockchain service."""

from __future__ import annotations

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
