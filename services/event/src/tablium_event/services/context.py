"""What every use case is given: the settings, the wallet client, the live engines.

One ``Context`` per app (``Tournaments`` builds it). Its account helpers open the wallet accounts a money
step moves between; none of them touches the database.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from tablium_event.clients.wallet import Wallet
from tablium_event.db.models import Registration, TournamentRow
from tablium_event.domain.config import TournamentConfig, TournamentRuleError
from tablium_event.services.cache import LiveEngines
from tablium_event.settings import EventSettings
from tablium_kit.errors import Conflict


@dataclass
class Context:
    settings: EventSettings
    wallet: Wallet
    engines: LiveEngines
    # The house's accounts per (kind, asset): opened once per process (opening again is free, but a round trip).
    house: dict[tuple[str, str], uuid.UUID] = field(default_factory=dict)

    async def house_account(self, kind: str, asset: str) -> uuid.UUID:
        key = (kind, asset)
        if key not in self.house:
            self.house[key] = await self.wallet.open_account("house", kind, asset)
        return self.house[key]

    async def player_account(self, reg: Registration, config: TournamentConfig) -> uuid.UUID:
        if reg.player_account_id is None:
            reg.player_account_id = await self.wallet.open_account(f"player:{reg.player_id}", "player", config.asset)
        return reg.player_account_id


def pool(row: TournamentRow) -> uuid.UUID:
    if row.prize_pool_account_id is None:
        raise Conflict("the tournament has no prize pool yet")
    return row.prize_pool_account_id


def rule_error(exc: TournamentRuleError) -> Conflict:
    return Conflict(str(exc))
