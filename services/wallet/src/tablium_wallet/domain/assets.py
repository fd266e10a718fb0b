"""The assets registry: every amount is an integer count of the asset's minor unit."""

from __future__ import annotations

from dataclasses import dataclass

from tablium_wallet.domain.errors import InvalidTransfer

# Amounts and balances are Postgres bigint: signed 64-bit.
MAX_AMOUNT = 2**63 - 1


@dataclass(frozen=True)
class Asset:
    code: str
    decimals: int


# 1 USDT = 10^6 minor units; 1 ETH = 10^18 wei (so at most ~9.22 ETH fits one signed 64-bit amount).
ASSETS: dict[str, Asset] = {asset.code: asset for asset in (Asset("USDT", 6), Asset("ETH", 18))}


def check_asset(code: str) -> Asset:
    asset = ASSETS.get(code)
    if asset is None:
        raise InvalidTransfer(f"unknown asset {code!r}; known: {', '.join(sorted(ASSETS))}")
    return asset
