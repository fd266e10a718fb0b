"""A relay process that publishes one batch, then stalls before marking it: a test SIGKILLs it there.

python relay_process.py DATABASE_URL EXCHANGE
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from conftest import TABLES
from tablium_kit.db import create_engine, session_factory
from tablium_kit.messaging import Relay
from tablium_kit.settings import ServiceSettings


async def main(database_url: str, exchange: str) -> None:
    settings = ServiceSettings(service_name="player", database_url=database_url, events_exchange=exchange)
    relay = Relay(settings, session_factory(create_engine(database_url)), TABLES)

    async def stall(*_: Any) -> None:
        print("published", flush=True)  # noqa: T201 - the test waits for this line
        await asyncio.sleep(3600)

    relay._mark = stall  # type: ignore[method-assign]
    await relay.publish_batch()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
