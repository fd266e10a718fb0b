"""The assets registry: every amount is an integer count of the asset's minor unit."""

from __future__ import annotations

from dataclasses import dataclass

from tablium_wallet.domain.errors import InvalidTransfer


@dataclass(frozen=True)
class Asset:
    code: str
    decimals: int


# 1 USDT = 10^6 minor units; 1 ETH = 10^18 wei. Amounts and counters are unsigned 128-bit (ADR 0007).
ASSETS: dict[str, Asset] = {asset.code: asset for asset in (Asset("USDT", 6), Asset("ETH", 18))}


def check_asset(code: str) -> Asset:
    asset = ASSETS.get(code)
    if asset is None:
        raise InvalidTransfer(f"unknown asset {code!r}; known: {', '.join(sorted(ASSETS))}")
    return asset
