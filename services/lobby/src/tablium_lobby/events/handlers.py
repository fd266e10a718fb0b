"""What the lobby does with other services' events: the club membership projection (the kit's
``ClubProjection`` on the lobby's tables; services/clubs.py stands up the members who left).

Each handler runs in the kit consumer's transaction with its inbox row (a redelivery is skipped); the
rows' seq makes a late older event change nothing, so duplicates and reordering are harmless.
"""

from __future__ import annotations

from tablium_kit.messaging.consumer import Handler
from tablium_lobby.services.clubs import PROJECTION, stand_up_leavers

HANDLERS: dict[str, Handler] = PROJECTION.handlers(stand_up_leavers)
