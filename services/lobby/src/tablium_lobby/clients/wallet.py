"""The wallet's internal API, as the lobby uses it.

Every transfer id derives from the lobby row that records the intent (a chip movement, a hand), so a
call repeated by the request or by the reconciler acts once.
"""

from __future__ import annotations

import uuid

from tablium_kit.wallet import PaymentRefused
from tablium_kit.wallet import WalletClient as Wallet

# uuid5 namespace of every transfer id the lobby makes.
NAMESPACE = uuid.UUID("b7f0e4d2-6a1c-5e39-8d4b-2c9a71e0f5a3")


def transfer_id(*parts: object) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, ":".join(map(str, parts)))


__all__ = ["NAMESPACE", "PaymentRefused", "Wallet", "transfer_id"]
