"""Transfers through the internal API: idempotency, holds (post, partial post, void, expiry), linked batches."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import jwt
import pytest
from litestar.testing import AsyncTestClient

from tablium_kit.auth import ServiceTokens

from .conftest import internal


def replay_body(t: dict[str, Any]) -> dict[str, Any]:
    keys = ("id", "debit_account_id", "credit_account_id", "amount", "asset", "code", "metadata", "timeout_s")
    return {**{k: t[k] for k in keys}, "pending": "pending" in t["flags"]}


async def test_transfer_and_idempotent_replay(client: AsyncTestClient, api: Any) -> None:
    alice, bob = await api.player(), await api.player()
    assert alice["flags"] == ["debits_must_not_exceed_credits"]
    assert (await api.open(alice["owner"], "player"))["id"] == alice["id"]  # opening again returns it
    await api.fund(alice, 1_000)
    response = await api.transfer(alice, bob, 400, metadata={"hand": 7})
    assert response.status_code == 201, response.text
    first = response.json()
    assert first["status"] == "posted"
    assert (first["amount"], first["posted_amount"]) == ("400", "400")
    again = await client.post("/internal/v1/transfers", json=replay_body(first), headers=internal())
    assert again.status_code == 200
    assert again.json() == first
    changed = await client.post(
        "/internal/v1/transfers", json={**replay_body(first), "amount": "401"}, headers=internal()
    )
    assert changed.status_code == 409
    assert changed.json()["type"] == "urn:tablium:problem:transfer-exists"
    assert (await api.balance(alice["id"]))["balance"] == 600
    assert (await api.balance(bob["id"]))["balance"] == 400
    broke = await api.transfer(bob, alice, 401)
    assert broke.status_code == 409
    assert broke.json()["type"] == "urn:tablium:problem:insufficient-funds"
    listed = await client.get(f"/internal/v1/accounts?owner={alice['owner']}&asset=USDT", headers=internal())
    assert [a["id"] for a in listed.json()] == [alice["id"]]


@pytest.mark.parametrize("caller", ["event", "lobby"])
async def test_the_event_service_and_the_lobby_may_move_money(client: AsyncTestClient, api: Any, caller: str) -> None:
    alice, bob = await api.player(), await api.player()
    await api.fund(alice, 10)
    body = {"id": str(uuid.uuid4()), "debit_account_id": alice["id"], "credit_account_id": bob["id"]}
    body |= {"amount": "1", "asset": "USDT", "code": "test"}
    headers = internal(tokens=ServiceTokens.development(caller))
    assert (await client.post("/internal/v1/transfers", json=body, headers=headers)).status_code == 201


async def test_no_other_service_may_move_money(client: AsyncTestClient, api: Any) -> None:
    alice, bob = await api.player(), await api.player()
    await api.fund(alice, 1_000)
    body = {"id": str(uuid.uuid4()), "debit_account_id": alice["id"], "credit_account_id": bob["id"]}
    body |= {"amount": "1000", "asset": "USDT", "code": "test"}
    for caller in ("player", "club", "blockchain", "rakeback", "wallet"):
        headers = internal(tokens=ServiceTokens.development(caller))
        answers = [
            await client.post("/internal/v1/transfers", json=body, headers=headers),
            await client.post("/internal/v1/transfers/batch", json={"transfers": [body]}, headers=headers),
            await client.get(f"/internal/v1/accounts/{alice['id']}", headers=headers),
        ]
        for response in answers:
            assert response.status_code == 403, (caller, response.text)
            assert response.headers["content-type"] == "application/problem+json"
    # The event's token for another service, and a token signed with the secret all services shared before.
    elsewhere = {**internal(), "Authorization": f"Bearer {ServiceTokens.development('event').token('lobby')}"}
    old_secret = "dev-only-service-token-secret-change-me-0123456789"
    claims = {"iss": "tablium-service", "aud": "tablium-internal", "sub": "service:event", "exp": 2**31, "iat": 0}
    forged = {**elsewhere, "Authorization": f"Bearer {jwt.encode(claims, old_secret, algorithm='HS256')}"}
    for headers in (elsewhere, forged):
        response = await client.post("/internal/v1/transfers", json=body, headers=headers)
        assert response.status_code == 401, response.text
    assert (await api.balance(bob["id"]))["balance"] == 0


async def test_hold_post_partially_releases_the_rest(client: AsyncTestClient, api: Any) -> None:
    player, table = await api.player(), await api.open(f"table:{uuid.uuid4().hex[:8]}", "table_escrow")
    await api.fund(player, 1_000)
    hold = (await api.transfer(player, table, 600, pending=True, code="table_buy_in")).json()
    assert hold["status"] == "pending"
    balance = await api.balance(player["id"])
    assert (balance["balance"], balance["available"], balance["debits_pending"]) == (1_000, 400, 600)
    assert (await api.transfer(player, table, 500)).status_code == 409  # held funds are not available
    path = f"/internal/v1/transfers/{hold['id']}"
    posted = await client.post(f"{path}/post", json={"amount": "450"}, headers=internal())
    assert posted.status_code == 200, posted.text
    assert posted.json()["status"] == "posted"
    assert posted.json()["posted_amount"] == "450"
    # Idempotent: posting the same again answers the same; voiding now is a conflict.
    assert (await client.post(f"{path}/post", json={"amount": "450"}, headers=internal())).json()["status"] == "posted"
    assert (await client.post(f"{path}/void", headers=internal())).status_code == 409
    balance = await api.balance(player["id"])
    assert (balance["balance"], balance["available"], balance["debits_pending"]) == (550, 550, 0)
    assert (await api.balance(table["id"]))["balance"] == 450


async def test_void_and_bad_posts(client: AsyncTestClient, api: Any) -> None:
    player, table = await api.player(), await api.open(f"table:{uuid.uuid4().hex[:8]}", "table_escrow")
    await api.fund(player, 100)
    hold = (await api.transfer(player, table, 80, pending=True)).json()
    path = f"/internal/v1/transfers/{hold['id']}"
    assert (await client.post(f"{path}/post", json={"amount": "81"}, headers=internal())).status_code == 422
    voided = await client.post(f"{path}/void", headers=internal())
    assert voided.status_code == 200
    assert voided.json()["status"] == "voided"
    assert (await client.post(f"{path}/void", headers=internal())).json()["status"] == "voided"
    assert (await client.post(f"{path}/post", json={}, headers=internal())).status_code == 409
    assert (await api.balance(player["id"]))["available"] == 100


async def test_pending_transfers_expire_once(client: AsyncTestClient, api: Any) -> None:
    player, table = await api.player(), await api.open(f"table:{uuid.uuid4().hex[:8]}", "table_escrow")
    await api.fund(player, 100)
    hold = (await api.transfer(player, table, 70, pending=True, timeout_s=1)).json()
    assert hold["expires_at"] is not None
    path = f"/internal/v1/transfers/{hold['id']}"
    async with asyncio.timeout(10):
        while (await client.get(path, headers=internal())).json()["status"] != "expired":  # noqa: ASYNC110
            await asyncio.sleep(0.1)
    assert (await client.post(f"{path}/post", json={}, headers=internal())).status_code == 409
    balance = await api.balance(player["id"])
    assert (balance["available"], balance["debits_pending"]) == (100, 0)


async def test_linked_transfers_are_all_or_nothing(client: AsyncTestClient, api: Any) -> None:
    alice, bob, carol = await api.player(), await api.player(), await api.player()
    await api.fund(alice, 100)

    def t(debit: dict[str, Any], credit: dict[str, Any], amount: int) -> dict[str, Any]:
        return {
            "id": str(uuid.uuid4()),
            "debit_account_id": debit["id"],
            "credit_account_id": credit["id"],
            "amount": str(amount),
            "asset": "USDT",
            "code": "payout",
        }

    failing = {"transfers": [t(alice, bob, 60), t(bob, carol, 30), t(alice, carol, 50)]}
    response = await client.post("/internal/v1/transfers/linked", json=failing, headers=internal())
    assert response.status_code == 409, response.text
    assert response.json()["index"] == 2
    for account, expected in ((alice, 100), (bob, 0), (carol, 0)):
        assert (await api.balance(account["id"]))["balance"] == expected
    good = {"transfers": [t(alice, bob, 60), t(bob, carol, 30), t(alice, carol, 40)]}
    response = await client.post("/internal/v1/transfers/linked", json=good, headers=internal())
    assert response.status_code == 201, response.text
    assert [x["flags"] for x in response.json()["transfers"]] == [["linked"], ["linked"], []]
    replay = await client.post("/internal/v1/transfers/linked", json=good, headers=internal())
    assert replay.status_code == 200
    for account, expected in ((alice, 0), (bob, 30), (carol, 70)):
        assert (await api.balance(account["id"]))["balance"] == expected


async def test_a_batch_makes_or_refuses_each_transfer_on_its_own(client: AsyncTestClient, api: Any) -> None:
    alice, bob = await api.player(), await api.player()
    table = await api.open(f"table:{uuid.uuid4().hex[:8]}", "table_escrow")
    await api.fund(alice, 100)

    def t(debit: dict[str, Any], credit: dict[str, Any], amount: int, **extra: Any) -> dict[str, Any]:
        return {
            "id": str(uuid.uuid4()),
            "debit_account_id": debit["id"],
            "credit_account_id": credit["id"],
            "amount": str(amount),
            "asset": "USDT",
            "code": "payout",
            **extra,
        }

    existing = (await api.transfer(alice, bob, 10)).json()
    transfers = [
        t(alice, bob, 30),
        t(bob, alice, 1_000),  # more than bob has: refused alone
        replay_body(existing),  # a retry: the stored transfer
        {**replay_body(existing), "amount": "11"},  # the same id, another body
        t(alice, table, 20, pending=True, timeout_s=60),
        t(alice, {"id": str(uuid.uuid4())}, 1),  # an unknown account
        t(bob, alice, 35),  # applied in order: bob has 10 + 30 by now
    ]
    response = await client.post("/internal/v1/transfers/batch", json={"transfers": transfers}, headers=internal())
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["status"] for r in results] == [201, 409, 200, 409, 201, 404, 201]
    assert results[1]["problem"]["type"] == "urn:tablium:problem:insufficient-funds"
    assert "transfer" not in results[1]
    assert results[2]["transfer"] == existing
    assert results[3]["problem"]["type"] == "urn:tablium:problem:transfer-exists"
    assert results[4]["transfer"]["status"] == "pending"
    assert results[5]["problem"]["type"] == "urn:tablium:problem:account-not-found"
    assert [r["transfer"]["id"] for r in results if r["status"] == 201] == [transfers[i]["id"] for i in (0, 4, 6)]
    alice_balance = await api.balance(alice["id"])
    assert (alice_balance["balance"], alice_balance["available"]) == (100 - 10 - 30 + 35, 100 - 10 - 30 + 35 - 20)
    assert (await api.balance(bob["id"]))["balance"] == 10 + 30 - 35
    # The whole batch again: every transfer made is now a replay, every refusal is refused again.
    again = await client.post("/internal/v1/transfers/batch", json={"transfers": transfers}, headers=internal())
    assert [r["status"] for r in again.json()["results"]] == [200, 409, 200, 409, 200, 404, 200]
    assert await api.balance(alice["id"]) == alice_balance


async def test_a_malformed_batch_is_refused_whole(client: AsyncTestClient, api: Any) -> None:
    alice, bob = await api.player(), await api.player()
    await api.fund(alice, 100)
    good = {
        "id": str(uuid.uuid4()),
        "debit_account_id": alice["id"],
        "credit_account_id": bob["id"],
        "amount": "5",
        "asset": "USDT",
        "code": "payout",
    }
    for body in (
        {"transfers": []},
        {"transfers": [good, {**good, "id": str(uuid.uuid4()), "amount": 5}]},  # a JSON number
        {"transfers": [good] * 257},
        {"transfers": [good], "linked": True},
    ):
        response = await client.post("/internal/v1/transfers/batch", json=body, headers=internal())
        assert response.status_code == 400, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
    assert (await api.balance(alice["id"]))["balance"] == 100


async def test_a_batch_of_resolutions_posts_or_voids_each_hold_on_its_own(client: AsyncTestClient, api: Any) -> None:
    player, pool = await api.player(), await api.open(f"tournament:{uuid.uuid4().hex[:8]}", "prize_pool")
    await api.fund(player, 1_000)
    holds = [(await api.transfer(player, pool, 100, pending=True)).json() for _ in range(5)]
    voided = await client.post(f"/internal/v1/transfers/{holds[3]['id']}/void", headers=internal())
    assert voided.status_code == 200, voided.text
    resolutions = [
        {"pending_id": holds[0]["id"], "action": "post"},
        {"pending_id": holds[1]["id"], "action": "post", "amount": "60"},  # the rest released
        {"pending_id": holds[2]["id"], "action": "void"},
        {"pending_id": holds[3]["id"], "action": "post"},  # voided before: refused alone
        {"pending_id": str(uuid.uuid4()), "action": "post"},  # no such hold
        {"pending_id": holds[4]["id"], "action": "post", "amount": "101"},  # more than held
    ]
    body = {"resolutions": resolutions}
    response = await client.post("/internal/v1/transfers/resolutions", json=body, headers=internal())
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["status"] for r in results] == [200, 200, 200, 409, 404, 422]
    assert [r["transfer"]["status"] for r in results[:3]] == ["posted", "posted", "voided"]
    assert results[1]["transfer"]["posted_amount"] == "60"
    assert results[3]["problem"]["type"] == "urn:tablium:problem:pending-transfer-resolved"
    balance = await api.balance(player["id"])
    # 100 + 60 posted; holds[4] still pending (100); the rest released.
    assert (balance["balance"], balance["available"], balance["debits_pending"]) == (840, 740, 100)
    assert (await api.balance(pool["id"]))["balance"] == 160
    # The same batch again: resolved holds answer as they are (idempotent), refusals are refused again.
    again = await client.post("/internal/v1/transfers/resolutions", json=body, headers=internal())
    assert [r["status"] for r in again.json()["results"]] == [200, 200, 200, 409, 404, 422]
    assert await api.balance(player["id"]) == balance
    for bad in ({"resolutions": []}, {"resolutions": [{"pending_id": holds[4]["id"], "action": "expire"}]}):
        response = await client.post("/internal/v1/transfers/resolutions", json=bad, headers=internal())
        assert response.status_code == 400, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
