"""A consumer process that commits one batch, then dies before acking it: a test SIGKILLs it there.

python consumer_process.py DATABASE_URL EXCHANGE QUEUE_PREFIX
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Sequence

from conftest import TABLES, record_effect
from tablium_kit.db import create_engine, session_factory
from tablium_kit.messaging import Consumer, QueueNames
from tablium_kit.messaging.batches import Deliveries, Delivery
from tablium_kit.settings import ServiceSettings


async def main(database_url: str, exchange: str, prefix: str) -> None:
    settings = ServiceSettings(service_name="wallet", database_url=database_url, events_exchange=exchange)
    queues = QueueNames.for_service("wallet", prefix)
    consumer = Consumer(settings, session_factory(create_engine(database_url)), TABLES, queues=queues)
    consumer.handler("player.registered")(record_effect)

    async def die(self: Deliveries, deliveries: Sequence[Delivery]) -> None:
        print(f"committed {len(deliveries)}", flush=True)  # noqa: T201 - the test reads this line
        os.kill(os.getpid(), signal.SIGKILL)

    Deliveries.ack = die  # type: ignore[method-assign]
    await consumer.start()
    await asyncio.sleep(3600)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3]))
