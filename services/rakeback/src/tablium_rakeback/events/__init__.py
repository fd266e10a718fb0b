"""Events the rakeback service publishes (docs/events/rakeback.md), through the kit's transactional outbox."""

from __future__ import annotations

from tablium_kit.messaging import Outbox
from tablium_rakeback.db.models import MESSAGING

outbox = Outbox("rakeback", MESSAGING)

ACCRUED = "rakeback.accrued"
TIER_CHANGED = "rakeback.tier_changed"
PAYOUT_REQUESTED = "rakeback.payout_requested"
PAYOUT_COMPLETED = "rakeback.payout_completed"
