"""The hands' rake transfers in batches (ADR 0012, seventh pass): the ones that come while a wallet request is
in flight go together in the next; each is answered as it would be alone (made, made before, refused), and
the money moves once per hand, against the real wallet."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from typing import Any

import httpx
from lobby_support import Ledger
from tablium_lobby.clients.wallet import Wallet
from tablium_lobby.services.rake import RakeBatcher
from tablium_lobby.settings import LobbySettings

from tablium_kit.service_identity import ServiceTokens


class _Gated(Wallet):
    """The real wallet client; its first batch waits for ``gate`` (a request in flight), and every batch's
    size is recorded."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.sizes: list[int] = []
        self.gate = asyncio.Event()
        self.sent = asyncio.Event()

    async def rakes(self, transfers: Sequence[dict[str, Any]]) -> list[int]:
        self.sizes.append(len(transfers))
        self.sent.set()
        if len(self.sizes) == 1:
            await self.gate.wait()
        return await super().rakes(transfers)


async def test_rakes_queued_behind_a_request_go_in_one_batch_each_answered_as_alone(
    settings: LobbySettings, ledger: Ledger
) -> None:
    wallet = _Gated(settings.wallet_url, ServiceTokens.from_settings(settings))
    batcher = RakeBatcher(wallet)
    escrow = uuid.UUID(await ledger.fund(str(uuid.uuid4()), 1_000))
    # A fresh account of its own stands for the house rake account, so its balance is this test's alone.
    house = uuid.UUID(await ledger.account(f"player:{uuid.uuid4()}", "player"))

    def rake(hand: uuid.UUID, amount: int) -> Any:
        metadata = {"hand_id": str(hand)}
        return batcher.transfer(hand, debit=escrow, credit=house, amount=amount, asset=ledger.asset, metadata=metadata)

    try:
        hands = [uuid.uuid4() for _ in range(4)]
        first = asyncio.create_task(rake(hands[0], 10))
        await wallet.sent.wait()  # the first request is in flight (held at the gate)
        queued = [
            asyncio.create_task(rake(hands[1], 20)),
            asyncio.create_task(rake(hands[2], 30)),
            asyncio.create_task(rake(hands[0], 10)),  # the first one again (the reconciler's settle)
            asyncio.create_task(rake(hands[3], 5_000)),  # more than the escrow holds
        ]
        await asyncio.sleep(0.05)
        assert wallet.sizes == [1]  # nothing more sent while the first request is in flight
        wallet.gate.set()
        assert await first == 201
        made_second, made_third, replayed, refused = await asyncio.gather(*queued)
        assert wallet.sizes == [1, 4]
        assert (made_second, made_third, replayed) == (201, 201, 200)
        assert 400 <= refused < 500
        assert await ledger.balance(str(house)) == 10 + 20 + 30
        assert await ledger.balance(str(escrow)) == 1_000 - 60
    finally:
        await batcher.stop()
        await wallet.aclose()


async def test_a_failed_request_fails_each_of_its_rakes(settings: LobbySettings, ledger: Ledger) -> None:
    wallet = Wallet("http://127.0.0.1:9", ServiceTokens.from_settings(settings))  # nothing listens there
    batcher = RakeBatcher(wallet)
    try:
        calls = [
            batcher.transfer(uuid.uuid4(), debit=uuid.uuid4(), credit=uuid.uuid4(), amount=1, asset="USDT", metadata={})
            for _ in range(3)
        ]
        results = await asyncio.gather(*calls, return_exceptions=True)
        # One request for the three (sent together: queued before the sender ran), its failure each one's.
        assert isinstance(results[0], httpx.TransportError), results
        assert all(result is results[0] for result in results), results
    finally:
        await batcher.stop()
        await wallet.aclose()
