"""The assets the platform takes on chain, with their decimals (amounts travel in the minor unit)."""

from __future__ import annotations

from typing import Literal

Asset = Literal["USDT", "ETH"]
DECIMALS: dict[str, int] = {"USDT": 6, "ETH": 18}
# Native transfers have no log: their deposits are keyed with this log index (the wallet's key is
# (chain id, tx hash, log index), and a transaction carries at most one native value).
NATIVE_LOG_INDEX = -1
