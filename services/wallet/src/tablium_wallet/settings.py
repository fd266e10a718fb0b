"""Wallet service settings (environment prefix ``TABLIUM_WALLET_``)."""

from __future__ import annotations

import msgspec

from tablium_kit.settings import ServiceSettings


class WalletSettings(ServiceSettings, kw_only=True):
    port: int = 8006
    # Loosening a responsible-play limit takes effect only after this delay; tightening is immediate.
    limits_cooling_off_s: int = 24 * 3600
    # The expiry job looks for pending transfers past their timeout this often, this many at a time.
    expiry_interval_s: float = 1.0
    expiry_batch_size: int = 500
    # The transfer batcher: at most this many requests share one database transaction.
    batch_max_size: int = 512
    # Batches in flight at once (the next one queues for the locks while the current one commits).
    batch_concurrency: int = 2
    # The platform's withdrawal limit per player, asset and UTC day, in the asset's minor unit (JSON in the
    # environment: {"USDT": 10000000000}); an asset missing has none. Held and posted withdrawals count.
    daily_withdrawal_limit: dict[str, int] = msgspec.field(default_factory=dict)
    # Tests run the consumer on their own queues; the app then starts none.
    consume_events: bool = True


def load_settings() -> WalletSettings:
    return WalletSettings.from_env("wallet")
