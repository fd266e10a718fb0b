"""Withdrawals against a real anvil and a real wallet process: held, signed from the hot wallet, sent once,
confirmed after N (or failed); stuck transactions replaced with higher fees; nonce gaps filled; checks."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from prometheus_client import REGISTRY
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from tablium_blockchain.clients.wallet import Wallet
from tablium_blockchain.services.chain import Chain, send, token_contract
from tablium_blockchain.services.sender import Sender
from tablium_blockchain.settings import BlockchainSettings

from tablium_kit.auth import ServiceTokens
from tablium_kit.localchain import LocalChain
from tablium_kit.messaging.testing import AmqpNames
from tablium_kit.service_processes import ServiceProcess

from .conftest import CONFIRMATIONS, DEPOSITOR, automined, bearer, blockchain_settings
from .withdrawal_support import (
    a_held_withdrawal,
    available,
    fund_player,
    mint_to_hot_wallet,
    recipient,
    retune,
    status_of,
    token_balance,
    withdraw,
    withdrawal_events,
)

USDT = 10**6


@pytest.fixture(scope="module")
async def settings(
    make_database: Callable[[str], Awaitable[str]],
    amqp_names: AmqpNames,
    local_chain: LocalChain,
    wallet_service: ServiceProcess,
) -> BlockchainSettings:
    extra = {"TABLIUM_BLOCKCHAIN_WALLET_URL": wallet_service.url, "TABLIUM_BLOCKCHAIN_SEND": "false"}
    return blockchain_settings(await make_database("blockchain_withdrawals"), local_chain, amqp_names.exchange, **extra)


@pytest.fixture
async def sender(
    chain: Chain, sessions: async_sessionmaker[AsyncSession], settings: BlockchainSettings
) -> AsyncIterator[Sender]:
    wallet = Wallet(settings.wallet_url, ServiceTokens.development("blockchain"))
    yield Sender(chain, sessions, settings, wallet)
    await wallet.aclose()


@pytest.fixture(scope="module", autouse=True)
async def hot_wallet_tokens(chain: Chain) -> None:
    await mint_to_hot_wallet(chain, 1_000_000 * USDT)


async def settle(sender: Sender, local_chain: LocalChain) -> None:
    """Sign and send, then N blocks and a pass to confirm."""
    await sender.run_once()
    await automined(sender.chain, local_chain)  # in its block before the N are counted
    local_chain.mine(CONFIRMATIONS)
    await sender.run_once()


async def a_nonce_nobody_holds(
    chain: Chain, sessions: async_sessionmaker[AsyncSession], sender: Sender
) -> tuple[str, int]:
    """What is outstanding settles its nonces first, then the next nonce is reserved with no transaction of
    ours holding it (a restored backup, an operator's mistake): (hot wallet, the gap's nonce)."""
    hot = chain.master.hot_wallet().address
    await sender.run_once()
    pending = int(await chain.w3.eth.get_transaction_count(hot, "pending"))
    async with sessions() as session, session.begin():
        await session.execute(text("UPDATE nonces SET next = :n WHERE address = :a"), {"n": pending + 1, "a": hot})
    return hot, pending


async def test_a_usdt_withdrawal_is_held_sent_once_and_confirmed_after_n(
    client: AsyncTestClient[Litestar],
    chain: Chain,
    sender: Sender,
    local_chain: LocalChain,
    sessions: async_sessionmaker[AsyncSession],
    wallet_service: ServiceProcess,
) -> None:
    player, to, key = str(uuid.uuid4()), recipient(), uuid.uuid4().hex
    await fund_player(wallet_service.url, player, 50 * USDT)
    response = await withdraw(client, player, address=to.lower(), amount=20 * USDT, key=key)
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["status"], body["address"], body["amount"]) == ("held", to, str(20 * USDT))
    assert await available(wallet_service.url, player) == 30 * USDT
    replay = await withdraw(client, player, address=to.lower(), amount=20 * USDT, key=key)
    assert (replay.status_code, replay.json()["id"]) == (200, body["id"])
    reused = await withdraw(client, player, address=to, amount=21 * USDT, key=key)
    assert reused.status_code == 409, reused.text

    await sender.run_once()
    assert await status_of(sessions, body["id"]) == "sent"
    # Its own block first: mined by the N-2 below instead (the miner a moment late), it would end one more short.
    await automined(chain, local_chain)
    local_chain.mine(CONFIRMATIONS - 2)  # the transaction's block and N-2 more: one short
    await sender.run_once()
    assert await status_of(sessions, body["id"]) == "sent"
    local_chain.mine(1)
    await sender.run_once()
    await sender.run_once()
    assert await status_of(sessions, body["id"]) == "confirmed"
    assert await token_balance(chain, to) == 20 * USDT

    events = await withdrawal_events(sessions, body["id"])
    assert [kind for kind, _ in events] == ["withdrawal_requested", "withdrawal_sent", "withdrawal_confirmed"]
    confirmed = events[-1][1]
    # What the wallet's handler reads (docs/events/wallet-consumed.md).
    assert confirmed["withdrawal_id"] == body["id"]
    assert confirmed["transfer_id"] == events[0][1]["transfer_id"]
    mine = await client.get(f"/api/v1/withdrawals/{body['id']}", headers=bearer(player))
    assert mine.status_code == 200
    assert mine.json()["tx_hash"] == confirmed["tx_hash"]
    listed = await client.get("/api/v1/withdrawals", headers=bearer(player))
    assert [w["id"] for w in listed.json()] == [body["id"]]
    assert (await client.get(f"/api/v1/withdrawals/{body['id']}", headers=bearer(str(uuid.uuid4())))).status_code == 404


async def test_an_eth_withdrawal(
    client: AsyncTestClient[Litestar],
    chain: Chain,
    sender: Sender,
    local_chain: LocalChain,
    sessions: async_sessionmaker[AsyncSession],
    wallet_service: ServiceProcess,
) -> None:
    player, to = str(uuid.uuid4()), recipient()
    await fund_player(wallet_service.url, player, 10**18, asset="ETH")
    response = await withdraw(client, player, address=to, amount=3 * 10**17, asset="ETH")
    assert response.status_code == 201, response.text
    await settle(sender, local_chain)
    assert await status_of(sessions, response.json()["id"]) == "confirmed"
    assert int(await chain.w3.eth.get_balance(to)) == 3 * 10**17


async def test_the_wallet_refuses_what_the_player_has_not(
    client: AsyncTestClient[Litestar], wallet_service: ServiceProcess
) -> None:
    player, key, to = str(uuid.uuid4()), uuid.uuid4().hex, recipient()
    await fund_player(wallet_service.url, player, 5 * USDT)
    for _ in range(2):  # and the same again: the same answer
        refused = await withdraw(client, player, address=to, amount=6 * USDT, key=key)
        assert refused.status_code == 409, refused.text
        assert refused.json()["type"] == "urn:tablium:problem:withdrawal-refused"
        assert refused.json()["reason"] == "insufficient-funds"
    assert await available(wallet_service.url, player) == 5 * USDT


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"address": "0x" + "ab" * 20 + "a"}, 400),  # 41 digits
        ({"address": "0xABaBaBaBABabABabAbAbABAbABabababaBaBABab"}, 422),  # checksum broken (last letter)
        ({"address": "0x" + "0" * 40}, 422),
        ({"amount": "0"}, 400),
        ({"amount": "-5"}, 400),
        ({"amount": "1.5"}, 400),
        ({"amount": str(2**128)}, 422),
        ({"amount": str(2**256)}, 400),  # past the 39 digits any amount has
        ({"amount": "1"}, 422),  # under the minimum
        ({"amount": str(10**15)}, 422),  # over the maximum
        ({"asset": "BTC"}, 400),
        ({"asset": "usdt"}, 400),
        ({"extra": 1}, 400),
    ],
)
async def test_bad_input_is_a_problem(client: AsyncTestClient[Litestar], body: dict[str, Any], status: int) -> None:
    request = {"address": recipient(), "asset": "USDT", "amount": str(5 * USDT), **body}
    headers = {**bearer(str(uuid.uuid4())), "Idempotency-Key": "k1"}
    response = await client.post("/api/v1/withdrawals", json=request, headers=headers)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_an_idempotency_key_is_required(client: AsyncTestClient[Litestar]) -> None:
    body = {"address": recipient(), "asset": "USDT", "amount": str(5 * USDT)}
    for headers in ({}, {"Idempotency-Key": ""}, {"Idempotency-Key": "a b"}):
        response = await client.post("/api/v1/withdrawals", json=body, headers={**bearer(str(uuid.uuid4())), **headers})
        assert response.status_code == 400, response.text


async def test_an_admin_pauses_withdrawals(
    client: AsyncTestClient[Litestar],
    sender: Sender,
    local_chain: LocalChain,
    sessions: async_sessionmaker[AsyncSession],
    wallet_service: ServiceProcess,
) -> None:
    player = str(uuid.uuid4())
    admin = bearer(str(uuid.uuid4()), ["player", "admin"])
    await fund_player(wallet_service.url, player, 20 * USDT)
    waiting = (await withdraw(client, player, address=recipient(), amount=5 * USDT)).json()
    pause = {"paused": True, "reason": "hot wallet rotation"}
    assert (await client.put("/api/v1/chain/withdrawal-pause", json=pause, headers=bearer(player))).status_code == 403
    paused = await client.put("/api/v1/chain/withdrawal-pause", json=pause, headers=admin)
    assert paused.status_code == 200, paused.text
    assert paused.json()["paused"] is True
    refused = await withdraw(client, player, address=recipient(), amount=5 * USDT)
    assert refused.status_code == 409
    assert refused.json()["type"] == "urn:tablium:problem:withdrawals-paused"
    await sender.run_once()
    assert await status_of(sessions, waiting["id"]) == "held"  # nothing new is signed

    resume = {"paused": False, "reason": "done"}
    assert (await client.put("/api/v1/chain/withdrawal-pause", json=resume, headers=admin)).json()["paused"] is False
    await settle(sender, local_chain)
    assert await status_of(sessions, waiting["id"]) == "confirmed"


async def test_a_stuck_transaction_is_replaced_with_higher_fees_and_lands_once(
    client: AsyncTestClient[Litestar],
    chain: Chain,
    sender: Sender,
    local_chain: LocalChain,
    sessions: async_sessionmaker[AsyncSession],
    wallet_service: ServiceProcess,
) -> None:
    _, to, wid = await a_held_withdrawal(client, wallet_service.url, 7 * USDT, funded=10 * USDT)
    with local_chain.mining_held():
        await sender.run_once()  # signed and sent: waits in the mempool
        retune(sender, replace_after_s=0)
        await sender.run_once()  # stuck longer than replace_after_s: re-signed at the same nonce
        async with sessions() as session:
            versions = (
                await session.execute(
                    text(
                        "SELECT tx_hash, nonce, max_fee_per_gas, max_priority_fee_per_gas FROM chain_txs "
                        "WHERE withdrawal_id = :w ORDER BY signed_at"
                    ),
                    {"w": uuid.UUID(wid)},
                )
            ).all()
        assert len(versions) == 2
        assert versions[0].nonce == versions[1].nonce
        assert versions[1].max_fee_per_gas > versions[0].max_fee_per_gas
        assert versions[1].max_priority_fee_per_gas > versions[0].max_priority_fee_per_gas
        local_chain.mine(CONFIRMATIONS)
    retune(sender, replace_after_s=120)
    await sender.run_once()
    assert await status_of(sessions, wid) == "confirmed"
    assert await token_balance(chain, to) == 7 * USDT  # once
    confirmed = (await withdrawal_events(sessions, wid))[-1]
    assert confirmed[0] == "withdrawal_confirmed"
    assert confirmed[1]["tx_hash"] == versions[1].tx_hash


async def test_a_nonce_gap_is_filled_and_the_withdrawal_behind_it_lands(
    client: AsyncTestClient[Litestar],
    chain: Chain,
    sender: Sender,
    local_chain: LocalChain,
    sessions: async_sessionmaker[AsyncSession],
    wallet_service: ServiceProcess,
) -> None:
    hot, pending = await a_nonce_nobody_holds(chain, sessions, sender)
    _, to, wid = await a_held_withdrawal(client, wallet_service.url, 3 * USDT, funded=10 * USDT)
    await sender.run_once()  # signed at pending + 1: stuck behind the gap, which is filled in the same pass
    await automined(chain, local_chain)
    async with sessions() as session:
        filler = await session.scalar(
            text("SELECT tx_hash FROM chain_txs WHERE purpose = 'filler' AND nonce = :n"), {"n": pending}
        )
    assert filler is not None
    local_chain.mine(CONFIRMATIONS)
    await sender.run_once()
    assert await status_of(sessions, wid) == "confirmed"
    assert await token_balance(chain, to) == 3 * USDT
    assert int(await chain.w3.eth.get_transaction_count(hot)) == pending + 2


async def test_a_nonce_taken_by_another_transaction_fails_the_withdrawal(
    client: AsyncTestClient[Litestar],
    chain: Chain,
    sender: Sender,
    local_chain: LocalChain,
    sessions: async_sessionmaker[AsyncSession],
    wallet_service: ServiceProcess,
) -> None:
    _, to, wid = await a_held_withdrawal(client, wallet_service.url, 4 * USDT, funded=10 * USDT)
    with local_chain.mining_held():
        await sender.run_once()
        async with sessions() as session:
            tx_hash = await session.scalar(text("SELECT tx_hash FROM withdrawals WHERE id = :w"), {"w": uuid.UUID(wid)})
        # Someone with the hot wallet's key uses the nonce first: ours leaves the mempool.
        local_chain.rpc("anvil_dropTransaction", tx_hash)
    hot = chain.master.hot_wallet()
    await send(chain.w3, hot, {"to": hot.address, "value": 1, "gas": 21_000})
    retune(sender, replace_after_s=3600)
    local_chain.mine(CONFIRMATIONS)
    await sender.run_once()
    assert await status_of(sessions, wid) == "failed"
    events = await withdrawal_events(sessions, wid)
    assert events[-1][0] == "withdrawal_failed"
    assert events[-1][1]["transfer_id"] == events[0][1]["transfer_id"]
    assert await token_balance(chain, to) == 0


async def test_a_hot_wallet_short_of_the_asset_refuses_before_holding(
    client: AsyncTestClient[Litestar], chain: Chain, wallet_service: ServiceProcess
) -> None:
    player = str(uuid.uuid4())
    await fund_player(wallet_service.url, player, 10 * USDT)
    hot, token = chain.master.hot_wallet(), token_contract(chain)
    everything = await token_balance(chain, hot.address)
    # The hot wallet's tokens go elsewhere for a moment (to anvil's account 1, which gives them back).
    away = await token.functions.transfer(DEPOSITOR.address, everything).build_transaction({"from": hot.address})
    await send(chain.w3, hot, {"to": away["to"], "data": away["data"]})
    try:
        refused = await withdraw(client, player, address=recipient(), amount=5 * USDT)
        assert refused.status_code == 409, refused.text
        assert refused.json()["type"] == "urn:tablium:problem:hot-wallet-short"
        assert await available(wallet_service.url, player) == 10 * USDT  # nothing held
    finally:
        back = await token.functions.transfer(hot.address, everything).build_transaction({"from": DEPOSITOR.address})
        await send(chain.w3, DEPOSITOR, {"to": back["to"], "data": back["data"]})


async def test_a_stuck_filler_is_replaced_with_higher_fees(
    client: AsyncTestClient[Litestar],
    chain: Chain,
    sender: Sender,
    local_chain: LocalChain,
    sessions: async_sessionmaker[AsyncSession],
    wallet_service: ServiceProcess,
) -> None:
    """A filler holds every later nonce of the hot wallet: stuck, it is re-signed with higher fees as a
    withdrawal is, and the withdrawal behind it lands."""
    hot, pending = await a_nonce_nobody_holds(chain, sessions, sender)
    _, to, wid = await a_held_withdrawal(client, wallet_service.url, 2 * USDT, funded=10 * USDT)
    with local_chain.mining_held():
        await sender.run_once()  # the withdrawal at pending + 1, the gap's filler at pending: both wait
        retune(sender, replace_after_s=0)
        await sender.run_once()  # both stuck longer than replace_after_s: re-signed at their nonces
        async with sessions() as session:
            fillers = (
                await session.execute(
                    text(
                        "SELECT tx_hash, max_fee_per_gas, max_priority_fee_per_gas FROM chain_txs "
                        "WHERE purpose = 'filler' AND nonce = :n ORDER BY signed_at"
                    ),
                    {"n": pending},
                )
            ).all()
        assert len(fillers) == 2
        assert fillers[1].max_fee_per_gas > fillers[0].max_fee_per_gas
        assert fillers[1].max_priority_fee_per_gas > fillers[0].max_priority_fee_per_gas
        local_chain.mine(CONFIRMATIONS)
    retune(sender, replace_after_s=120)
    await sender.run_once()
    assert await status_of(sessions, wid) == "confirmed"
    assert await token_balance(chain, to) == 2 * USDT
    landed = await chain.w3.eth.get_transaction_receipt(fillers[1].tx_hash)
    assert int(landed["status"]) == 1
    assert int(await chain.w3.eth.get_transaction_count(hot)) == pending + 2


async def test_a_transaction_the_node_keeps_refusing_fails_the_withdrawal_and_its_nonce_is_filled(
    client: AsyncTestClient[Litestar],
    chain: Chain,
    sender: Sender,
    local_chain: LocalChain,
    sessions: async_sessionmaker[AsyncSession],
    wallet_service: ServiceProcess,
) -> None:
    """The hot wallet's ETH is gone after signing (the node answers "insufficient funds" every time): after
    refusals_before_failing refusals over refused_for_s_before_failing the withdrawal is failed (the wallet
    voids its hold on withdrawal_failed), a filler outbidding it takes its nonce, and later ones proceed."""
    hot = chain.master.hot_wallet().address
    await sender.run_once()
    player, to, wid = await a_held_withdrawal(client, wallet_service.url, 4 * USDT, funded=10 * USDT)
    eth = int(await chain.w3.eth.get_balance(hot))
    given_up = REGISTRY.get_sample_value("tablium_chain_withdrawals_given_up_total", {"asset": "USDT"}) or 0
    retune(sender, refusals_before_failing=2, refused_for_s_before_failing=0)
    with local_chain.mining_held():
        try:
            await sender.run_once()  # signed and sent
            async with sessions() as session:
                sql = text("SELECT tx_hash, nonce FROM withdrawals WHERE id = :w")
                tx_hash, nonce = (await session.execute(sql, {"w": uuid.UUID(wid)})).one()
            local_chain.rpc("anvil_dropTransaction", tx_hash)  # the node forgets it, and the hot wallet is drained
            local_chain.rpc("anvil_setBalance", hot, hex(0))
            await sender.run_once()  # sent again: refused
            await sender.run_once()  # refused twice
            assert await status_of(sessions, wid) == "sent"
            async with sessions() as session:
                refusals = await session.scalar(
                    text("SELECT refusals FROM chain_txs WHERE tx_hash = :h"), {"h": tx_hash}
                )
            assert refusals == 2
            await sender.run_once()  # given up
            assert await status_of(sessions, wid) == "failed"
            events = await withdrawal_events(sessions, wid)
            assert events[-1][0] == "withdrawal_failed"
            assert events[-1][1]["transfer_id"] == events[0][1]["transfer_id"]  # the hold the wallet voids
            assert "refused" in events[-1][1]["reason"]
            alerted = REGISTRY.get_sample_value("tablium_chain_withdrawals_given_up_total", {"asset": "USDT"})
            assert alerted == given_up + 1
            async with sessions() as session:
                filler = (
                    await session.execute(
                        text("SELECT tx_hash, max_fee_per_gas FROM chain_txs WHERE purpose = 'filler' AND nonce = :n"),
                        {"n": nonce},
                    )
                ).one()
                refused_fee = await session.scalar(
                    text("SELECT max_fee_per_gas FROM chain_txs WHERE tx_hash = :h"), {"h": tx_hash}
                )
            assert filler.max_fee_per_gas > refused_fee  # it outbids the refused bytes wherever they might be
        finally:
            local_chain.rpc("anvil_setBalance", hot, hex(eth))  # gas again for the rest of the module's tests
    retune(sender, refusals_before_failing=10, refused_for_s_before_failing=300)
    await sender.run_once()  # the filler is sent again, now that there is gas: the nonce is used
    # anvil mines an automined transaction just after answering the send: wait for it rather than race it
    assert int((await chain.w3.eth.wait_for_transaction_receipt(filler.tx_hash, timeout=10))["status"]) == 1
    assert int(await chain.w3.eth.get_transaction_count(hot)) == nonce + 1
    assert await token_balance(chain, to) == 0

    # The next withdrawal takes the next nonce and lands.
    later = (await withdraw(client, player, address=to, amount=3 * USDT)).json()["id"]
    await settle(sender, local_chain)
    assert await status_of(sessions, later) == "confirmed"
    assert await token_balance(chain, to) == 3 * USDT


async def test_withdrawals_signed_in_one_pass_count_what_the_earlier_ones_will_take(
    client: AsyncTestClient[Litestar],
    chain: Chain,
    sender: Sender,
    local_chain: LocalChain,
    sessions: async_sessionmaker[AsyncSession],
    wallet_service: ServiceProcess,
) -> None:
    """The chain's balances show a withdrawal just sent only once it is mined (a block time later on a real
    chain, a moment later with automine). Two withdrawals held while the hot wallet could pay both, then its
    tokens fall to what pays one (moved by an operator, say): one pass sends the first and keeps the second
    held, rather than sending it to revert on chain; it goes once the tokens are back."""
    hot, token = chain.master.hot_wallet(), token_contract(chain)
    _, _, first = await a_held_withdrawal(client, wallet_service.url, 6 * USDT, funded=10 * USDT)
    _, to, second = await a_held_withdrawal(client, wallet_service.url, 6 * USDT, funded=10 * USDT)
    spare = await token_balance(chain, hot.address) - 10 * USDT
    # All but 10 USDT go to anvil's account 1 for a while (which gives them back).
    away = await token.functions.transfer(DEPOSITOR.address, spare).build_transaction({"from": hot.address})
    await send(chain.w3, hot, {"to": away["to"], "data": away["data"]})
    try:
        with local_chain.mining_held():  # the first one's block not there yet, as on a real chain
            await sender.run_once()
            assert await status_of(sessions, first) == "sent"
            assert await status_of(sessions, second) == "held"
            local_chain.mine(CONFIRMATIONS)
        await sender.run_once()
        assert await status_of(sessions, first) == "confirmed"
        assert await status_of(sessions, second) == "held"  # 4 USDT left: still short
    finally:
        back = await token.functions.transfer(hot.address, spare).build_transaction({"from": DEPOSITOR.address})
        await send(chain.w3, DEPOSITOR, {"to": back["to"], "data": back["data"]})
    await settle(sender, local_chain)
    assert await status_of(sessions, second) == "confirmed"
    assert await token_balance(chain, to) == 6 * USDT
