"""The wallet's internal API, as the lobby uses it.

Every transfer id derives from the lobby row that records the intent (a chip movement, a hand), so a
call repeated by the request or by the reconciler acts once.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from tablium_kit.wallet import PaymentRefused, WalletClient

# uuid5 namespace of every transfer id the lobby makes.
NAMESPACE = uuid.UUID("b7f0e4d2-6a1c-5e39-8d4b-2c9a71e0f5a3")


def transfer_id(*parts: object) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, ":".join(map(str, parts)))


class Wallet(WalletClient):
    """The kit's wallet client, with the batch call the hands' rake makes (services/rake.py)."""

    async def rakes(self, transfers: Sequence[dict[str, Any]]) -> list[int]:
        """Independent posted ``table_rake`` transfers in one request (``/transfers/batch``), each replayed
        by its id; each one's status as alone (201 made, 200 made before, 4xx refused), in order."""
        answer = await self.transfer_batch(
            [{**t, "code": "table_rake"} for t in transfers], key_prefix="rake", namespace=NAMESPACE
        )
        return [int(result["status"]) for result in answer]


__all__ = ["NAMESPACE", "PaymentRefused", "Wallet", "transfer_id"]
