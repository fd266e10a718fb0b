"""Events the lobby publishes, through the kit's transactional outbox (catalog: kit messaging/catalog.py).

Chips and money travel as decimal strings.
"""

from __future__ import annotations

from tablium_kit.messaging import Outbox
from tablium_lobby.db.models import MESSAGING

SERVICE = "lobby"
TABLE_OPENED = "lobby.table_opened"
TABLE_CLOSED = "lobby.table_closed"
PLAYER_SEATED = "lobby.player_seated"
PLAYER_LEFT = "lobby.player_left"
HAND_COMPLETED = "lobby.hand_completed"

outbox = Outbox(SERVICE, MESSAGING)
