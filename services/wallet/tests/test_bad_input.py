"""Bad input gets a clear 4xx problem+json and changes nothing."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from .conftest import bearer, internal


def assert_problem(response: Any, status: int | tuple[int, ...]) -> dict[str, Any]:
    statuses = status if isinstance(status, tuple) else (status,)
    assert response.status_code in statuses, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/problem+json"), response.headers
    body: dict[str, Any] = response.json()
    assert body["status"] == response.status_code
    assert body["title"]
    assert body["type"]
    return body


@pytest.fixture
async def pair(api: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    alice, bob = await api.player(), await api.player()
    await api.fund(alice, 1_000)
    return alice, bob


def body(debit: dict[str, Any], credit: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "debit_account_id": debit["id"],
        "credit_account_id": credit["id"],
        "amount": "10",
        "asset": "USDT",
        "code": "test",
        **changes,
    }


@pytest.mark.parametrize(
    ("changes", "status"),
    [
        ({"amount": "0"}, 400),
        ({"amount": "-5"}, 400),
        ({"amount": str(2**128)}, 422),
        ({"amount": "9" * 39}, 422),
        ({"amount": "9" * 40}, 400),
        ({"amount": "ten"}, 400),
        # Amounts are canonical decimal strings only: no JSON numbers, exponents, fractions, spaces, signs,
        # leading zeros or trailing newlines.
        ({"amount": 10}, 400),
        ({"amount": 1.5}, 400),
        ({"amount": 1e3}, 400),
        ({"amount": "1e3"}, 400),
        ({"amount": "5.0"}, 400),
        ({"amount": " 5"}, 400),
        ({"amount": "5 "}, 400),
        ({"amount": "+5"}, 400),
        ({"amount": "05"}, 400),
        ({"amount": "5\n"}, 400),
        ({"asset": "ETH"}, 422),
        ({"asset": "DOGE"}, 422),
        ({"debit_account_id": str(uuid.uuid4())}, 404),
        ({"credit_account_id": str(uuid.uuid4())}, 404),
        ({"id": "not-a-uuid"}, 400),
        ({"code": "Bad Code!"}, 400),
        ({"timeout_s": 30}, 422),  # a timeout without pending
        ({"pending": True, "timeout_s": 0}, 400),
        ({"is_admin": True}, 400),
    ],
)
async def test_bad_transfers_change_nothing(
    client: AsyncTestClient, api: Any, pair: tuple[dict[str, Any], dict[str, Any]], changes: dict[str, Any], status: int
) -> None:
    alice, bob = pair
    response = await client.post("/internal/v1/transfers", json=body(alice, bob, **changes), headers=internal())
    assert_problem(response, status)
    assert (await api.balance(alice["id"]))["balance"] == 1_000
    assert (await api.balance(bob["id"]))["balance"] == 0


async def test_mismatched_assets_and_same_account(client: AsyncTestClient, api: Any) -> None:
    usdt, eth = await api.player("USDT"), await api.player("ETH")
    await api.fund(usdt, 100)
    problem = assert_problem(await api.transfer(usdt, eth, 5), 422)
    assert "asset" in problem["detail"]
    assert_problem(await api.transfer(usdt, usdt, 5), 422)
    assert (await api.balance(usdt["id"]))["balance"] == 100
    assert (await api.balance(eth["id"]))["balance"] == 0


async def test_counters_grow_past_64_bits_and_refuse_to_overflow_128(client: AsyncTestClient, api: Any) -> None:
    player = await api.player("ETH")
    house = await api.open("house", "house_rake", "ETH")
    for _ in range(3):  # 3 * 2^63: past signed and unsigned 64 bits
        assert (await api.transfer(house, player, 2**63)).status_code == 201
    assert (await api.balance(player["id"]))["credits_posted"] == 3 * 2**63
    assert (await api.balance(house["id"]))["balance"] == -3 * 2**63
    assert (await api.transfer(house, player, 2**128 - 1 - 3 * 2**63)).status_code == 201
    problem = assert_problem(await api.transfer(house, player, 1), 422)
    assert problem["type"] == "urn:tablium:problem:overflow"
    assert "2^128-1" in problem["detail"]
    balance = await api.account(player["id"])
    assert balance["balance"]["balance"] == str(2**128 - 1)
    assert (await api.account(house["id"]))["balance"]["balance"] == f"-{2**128 - 1}"


async def test_malformed_json_and_not_an_object(client: AsyncTestClient) -> None:
    headers = {**internal(), "Content-Type": "application/json"}
    assert_problem(await client.post("/internal/v1/transfers", content=b'{"id": ', headers=headers), 400)
    assert_problem(await client.post("/internal/v1/transfers", json=[1, 2], headers=internal()), 400)
    assert_problem(await client.post("/internal/v1/transfers/linked", json={"transfers": []}, headers=internal()), 400)


async def test_idempotency_key_is_required(
    client: AsyncTestClient, pair: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    alice, bob = pair
    headers = {"Authorization": internal()["Authorization"]}
    problem = assert_problem(await client.post("/internal/v1/transfers", json=body(alice, bob), headers=headers), 400)
    assert problem["type"] == "urn:tablium:problem:idempotency-key-required"
    account = {"owner": "house", "kind": "house_fees", "asset": "USDT"}
    assert_problem(await client.put("/internal/v1/accounts", json=account, headers=headers), 400)


async def test_internal_routes_refuse_user_tokens_and_anonymous_calls(
    client: AsyncTestClient, pair: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    alice, bob = pair
    user = {**bearer(str(uuid.uuid4()), ["player", "admin"]), "Idempotency-Key": "k"}
    assert_problem(await client.post("/internal/v1/transfers", json=body(alice, bob), headers=user), 401)
    assert_problem(await client.get(f"/internal/v1/accounts/{alice['id']}", headers=user), 401)
    assert_problem(await client.post("/internal/v1/transfers", json=body(alice, bob)), 401)


@pytest.mark.parametrize(
    "account",
    [
        {"owner": "player:not-a-uuid", "kind": "player", "asset": "USDT"},
        {"owner": f"player:{uuid.uuid4()}", "kind": "house_rake", "asset": "USDT"},
        {"owner": "house", "kind": "chain_clearing", "asset": "USDT"},
        {"owner": "martians", "kind": "player", "asset": "USDT"},
        {"owner": "house", "kind": "house_fees", "asset": "DOGE"},
        {"owner": "house", "kind": "casino", "asset": "USDT"},
    ],
)
async def test_bad_accounts(client: AsyncTestClient, account: dict[str, str]) -> None:
    assert_problem(await client.put("/internal/v1/accounts", json=account, headers=internal()), (400, 422))


async def test_unknown_things_are_404(client: AsyncTestClient) -> None:
    assert_problem(await client.get(f"/internal/v1/accounts/{uuid.uuid4()}", headers=internal()), 404)
    assert_problem(await client.get(f"/internal/v1/transfers/{uuid.uuid4()}", headers=internal()), 404)
    missing = f"/internal/v1/transfers/{uuid.uuid4()}/post"
    assert_problem(await client.post(missing, json={}, headers=internal()), 404)
