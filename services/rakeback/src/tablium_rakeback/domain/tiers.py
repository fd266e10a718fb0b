"""Tiers of players outside clubs, by the rake they paid over a rolling window. Pure: no I/O."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import msgspec


class Tier(msgspec.Struct, frozen=True, kw_only=True):
    """A tier: from ``min_rake`` (in the asset's minor unit, over the window) the player gets ``bps`` back."""

    name: str
    min_rake: int
    bps: int


# USDT has 6 decimals: bronze from the first unit, silver from 100 USDT, gold 1,000, platinum 10,000.
DEFAULT_TIERS: dict[str, list[Tier]] = {
    "USDT": [
        Tier(name="bronze", min_rake=0, bps=1000),
        Tier(name="silver", min_rake=100_000_000, bps=1500),
        Tier(name="gold", min_rake=1_000_000_000, bps=2000),
        Tier(name="platinum", min_rake=10_000_000_000, bps=3000),
    ],
    "ETH": [
        Tier(name="bronze", min_rake=0, bps=1000),
        Tier(name="silver", min_rake=50_000_000_000_000_000, bps=1500),
        Tier(name="gold", min_rake=500_000_000_000_000_000, bps=2000),
        Tier(name="platinum", min_rake=5_000_000_000_000_000_000, bps=3000),
    ],
}


@dataclass(frozen=True)
class TierStanding:
    name: str
    bps: int


NO_TIER = TierStanding("none", 0)


def check_tiers(table: dict[str, list[Tier]]) -> None:
    for asset, tiers in table.items():
        thresholds = [t.min_rake for t in tiers]
        if not tiers or thresholds != sorted(set(thresholds)) or thresholds[0] != 0:
            raise ValueError(f"tiers of {asset}: thresholds must start at 0 and increase")
        if any(not 0 <= t.bps <= 10_000 for t in tiers):
            raise ValueError(f"tiers of {asset}: bps must be 0..10000")


def tier_for(rolling_rake: int, tiers: Sequence[Tier]) -> TierStanding:
    """The highest tier whose threshold ``rolling_rake`` reaches (an asset without tiers: none)."""
    standing = NO_TIER
    for tier in tiers:
        if rolling_rake >= tier.min_rake:
            standing = TierStanding(tier.name, tier.bps)
    return standing
