"""The player's wallet (balances, history, limits) and the admin's credits and debits."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from litestar.testing import AsyncTestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from tablium_wallet.events.handlers import on_deposit_confirmed, on_player_registered

from tablium_kit.messaging import CloudEvent

from .conftest import bearer, internal

ADMIN = str(uuid.uuid4())


def _event(type_: str, data: dict[str, Any]) -> CloudEvent:
    return CloudEvent(id=uuid.uuid4(), source="/services/x", type=type_, time=datetime.now(UTC), subject="x", data=data)


async def registered_player(sessions: async_sessionmaker[AsyncSession]) -> str:
    """A new player, registered as the player service announces it (``player.registered``)."""
    player_id = str(uuid.uuid4())
    async with sessions() as session, session.begin():
        await on_player_registered(session, _event("player.registered", {"player_id": player_id}))
    return player_id


async def credit(client: AsyncTestClient, player_id: str, amount: int, **extra: Any) -> Any:
    return await client.post(
        "/api/v1/admin/wallet/credit",
        json={"player_id": player_id, "asset": "USDT", "amount": str(amount), "reason": "demo funding", **extra},
        headers=bearer(ADMIN, ["player", "admin"]),
    )


async def test_admin_credit_debit_and_audit(
    client: AsyncTestClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    player_id = await registered_player(sessions)
    key = str(uuid.uuid4())
    first = await credit(client, player_id, 1_000, id=key)
    assert first.status_code == 201, first.text
    assert (await credit(client, player_id, 1_000, id=key)).status_code == 200  # same id: once
    no_reason = await client.post(
        "/api/v1/admin/wallet/credit",
        json={"player_id": player_id, "asset": "USDT", "amount": "5"},
        headers=bearer(ADMIN, ["player", "admin"]),
    )
    assert no_reason.status_code == 400
    assert (await credit(client, player_id, 5)).status_code == 201  # no id: a new adjustment each time
    forbidden = await client.post(
        "/api/v1/admin/wallet/debit",
        json={"player_id": player_id, "asset": "USDT", "amount": "5", "reason": "x" * 5},
        headers=bearer(player_id),
    )
    assert forbidden.status_code == 403
    too_much = await client.post(
        "/api/v1/admin/wallet/debit",
        json={"player_id": player_id, "asset": "USDT", "amount": "5000", "reason": "chargeback"},
        headers=bearer(ADMIN, ["admin"]),
    )
    assert too_much.status_code == 409
    debit_id = str(uuid.uuid4())
    debited = await client.post(
        "/api/v1/admin/wallet/debit",
        json={"player_id": player_id, "asset": "USDT", "amount": "5", "reason": "chargeback", "id": debit_id},
        headers=bearer(ADMIN, ["admin"]),
    )
    assert debited.status_code == 201, debited.text
    balances = (await client.get("/api/v1/wallet/balances", headers=bearer(player_id))).json()
    assert [b["balance"]["balance"] for b in balances] == ["1000"]
    async with sessions() as session:
        audit = (
            await session.execute(
                text(
                    "SELECT actor, action, amount, reason FROM audit_log WHERE transfer_id = ANY(CAST(:t AS uuid[])) "
                    "ORDER BY created_at"
                ),
                {"t": [key, debit_id]},
            )
        ).all()
    assert audit == [(ADMIN, "admin_credit", 1_000, "demo funding"), (ADMIN, "admin_debit", 5, "chargeback")]


async def test_admin_credit_to_an_unknown_player_is_refused(
    client: AsyncTestClient, api: Any, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """No ownerless funded account: only players the wallet saw registered can be credited (or debited)."""
    stranger = str(uuid.uuid4())
    for action in ("credit", "debit"):
        response = await client.post(
            f"/api/v1/admin/wallet/{action}",
            json={"player_id": stranger, "asset": "USDT", "amount": "1000", "reason": "typo in the id"},
            headers=bearer(ADMIN, ["admin"]),
        )
        assert response.status_code == 404, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["type"] == "urn:tablium:problem:player-not-found"
    listed = await api.client.get(f"/internal/v1/accounts?owner=player:{stranger}", headers=internal())
    assert listed.json() == []
    async with sessions() as session:
        audited = await session.scalar(text("SELECT count(*) FROM audit_log WHERE reason = 'typo in the id'"))
    assert audited == 0
    # Once registered (redelivered: the same), the same credit goes through.
    for _ in range(2):
        async with sessions() as session, session.begin():
            await on_player_registered(session, _event("player.registered", {"player_id": stranger}))
    assert (await credit(client, stranger, 1_000)).status_code == 201


async def test_history_pages_and_filters(
    client: AsyncTestClient, api: Any, sessions: async_sessionmaker[AsyncSession]
) -> None:
    player_id = await registered_player(sessions)
    for amount in range(1, 6):
        assert (await credit(client, player_id, amount)).status_code == 201
    table = await api.open(f"table:{uuid.uuid4().hex[:8]}", "table_escrow")
    (mine,) = (await client.get("/api/v1/wallet/balances", headers=bearer(player_id))).json()
    assert (await api.transfer(mine, table, 3, code="table_buy_in")).status_code == 201
    seen: list[str] = []
    cursor = None
    while True:
        query = "?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = (await client.get(f"/api/v1/wallet/history{query}", headers=bearer(player_id))).json()
        seen += [item["amount"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ["3", "5", "4", "3", "2", "1"]  # newest first, each once
    buy_ins = (await client.get("/api/v1/wallet/history?code=table_buy_in", headers=bearer(player_id))).json()
    assert [i["amount"] for i in buy_ins["items"]] == ["3"]
    for bad_cursor in ("abc", "-1", "%C2%B2", str(2**63)):
        response = await client.get(f"/api/v1/wallet/history?cursor={bad_cursor}", headers=bearer(player_id))
        assert response.status_code == 422, (bad_cursor, response.text)
    assert (await client.get("/api/v1/wallet/history?limit=0", headers=bearer(player_id))).status_code == 400
    assert (await client.get("/api/v1/wallet/history")).status_code == 401


async def test_a_self_exclusion_past_the_last_utc_year_is_a_400_and_sets_nothing(
    client: AsyncTestClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """9999-12-31T23:59:59-14:00 is a valid instant whose UTC is in year 10000: refused as input, not a 500."""
    player_id = await registered_player(sessions)
    headers = bearer(player_id)
    for until in ("9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00"):
        refused = await client.put("/api/v1/wallet/limits", json={"self_excluded_until": until}, headers=headers)
        assert refused.status_code == 400, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
    shown = (await client.get("/api/v1/wallet/limits", headers=headers)).json()
    assert shown["in_force"]["self_excluded_until"] is None
    # The latest instant that is still one in UTC is taken, and shown in UTC.
    taken = await client.put(
        "/api/v1/wallet/limits", json={"self_excluded_until": "9999-12-31T09:00:00-14:00"}, headers=headers
    )
    assert taken.status_code == 200, taken.text
    assert taken.json()["in_force"]["self_excluded_until"].startswith("9999-12-31T23:00:00")


async def test_limits_tighten_now_loosen_later_and_are_enforced(
    client: AsyncTestClient, api: Any, sessions: async_sessionmaker[AsyncSession]
) -> None:
    player_id = await registered_player(sessions)
    assert (await credit(client, player_id, 1_000)).status_code == 201
    (mine,) = (await client.get("/api/v1/wallet/balances", headers=bearer(player_id))).json()
    table = await api.open(f"table:{uuid.uuid4().hex[:8]}", "table_escrow")
    headers = bearer(player_id)
    tightened = await client.put("/api/v1/wallet/limits", json={"daily_loss_limit": {"USDT": "300"}}, headers=headers)
    assert tightened.status_code == 200, tightened.text
    assert tightened.json()["in_force"]["daily_loss_limit"] == {"USDT": "300"}
    assert tightened.json()["scheduled"] is None
    assert (await api.transfer(mine, table, 200, code="table_buy_in")).status_code == 201
    refused = await api.transfer(mine, table, 101, pending=True, code="table_buy_in")
    assert refused.status_code == 403, refused.text
    assert refused.json()["type"] == "urn:tablium:problem:limit-exceeded"
    assert refused.json()["limit"] == "daily_loss_limit"
    # Winnings back from the table lower today's loss, so staking again fits.
    assert (await api.transfer(table, mine, 150, code="table_cash_out")).status_code == 201
    assert (await api.transfer(mine, table, 101, code="table_buy_in")).status_code == 201
    loosened = await client.put("/api/v1/wallet/limits", json={"daily_loss_limit": {"USDT": "5000"}}, headers=headers)
    body = loosened.json()
    assert body["in_force"]["daily_loss_limit"] == {"USDT": "300"}  # not yet
    assert body["scheduled"]["daily_loss_limit"] == {"USDT": "5000"}
    assert body["scheduled_at"] is not None
    shown = (await client.get("/api/v1/wallet/limits", headers=headers)).json()
    assert shown["in_force"]["daily_loss_limit"] == {"USDT": "300"}
    assert shown["scheduled"]["daily_loss_limit"] == {"USDT": "5000"}
    until = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    excluded = await client.put("/api/v1/wallet/limits", json={"self_excluded_until": until}, headers=headers)
    assert excluded.json()["in_force"]["self_excluded_until"] is not None
    refused = await api.transfer(mine, table, 1, code="table_buy_in")
    assert refused.status_code == 403
    assert refused.json()["limit"] == "self_exclusion"
    # Withdrawals stay possible while self-excluded.
    clearing = await api.open("chain:1", "chain_clearing")
    assert (await api.transfer(mine, clearing, 10, code="withdrawal", pending=True)).status_code == 201
    async with sessions() as session:
        events = (
            (
                await session.execute(
                    text(
                        "SELECT envelope->'data'->>'limit' FROM outbox WHERE type = 'wallet.limit_exceeded' "
                        "AND subject = :s ORDER BY seq"
                    ),
                    {"s": f"player:{player_id}"},
                )
            )
            .scalars()
            .all()
        )
    assert events == ["daily_loss_limit", "self_exclusion"]
    for cap in (-1, 300, "-1", "0", "3e2", "0300"):
        bad = await client.put("/api/v1/wallet/limits", json={"daily_loss_limit": {"USDT": cap}}, headers=headers)
        assert bad.status_code == 400, (cap, bad.text)


async def test_the_daily_deposit_limit_bounds_deposits_but_not_confirmed_chain_deposits(
    client: AsyncTestClient, api: Any, sessions: async_sessionmaker[AsyncSession]
) -> None:
    player_id = str(uuid.uuid4())
    headers = bearer(player_id)
    limited = await client.put("/api/v1/wallet/limits", json={"daily_deposit_limit": {"USDT": "100"}}, headers=headers)
    assert limited.status_code == 200, limited.text
    mine = await api.open(f"player:{player_id}", "player")
    clearing = await api.open("chain:31337", "chain_clearing")
    assert (await api.transfer(clearing, mine, 60, code="deposit")).status_code == 201
    refused = await api.transfer(clearing, mine, 41, code="deposit")
    assert refused.status_code == 403, refused.text
    assert refused.json()["limit"] == "daily_deposit_limit"
    assert (await api.transfer(clearing, mine, 40, code="deposit")).status_code == 201  # exactly the limit
    # Money already confirmed on chain is credited whatever the limit (see the ADR).
    deposit = CloudEvent(
        id=uuid.uuid4(),
        source="/services/blockchain",
        type="blockchain.deposit_confirmed",
        time=datetime.now(UTC),
        subject="x",
        data={
            "chain_id": 31337,
            "tx_hash": "0x" + "cd" * 32,
            "log_index": 0,
            "player_id": player_id,
            "asset": "USDT",
            "amount": "500",
        },
    )
    async with sessions() as session, session.begin():
        await on_deposit_confirmed(session, deposit)
    assert (await api.balance(mine["id"]))["balance"] == 600
    async with sessions() as session:
        events = (
            await session.execute(
                text(
                    "SELECT envelope->'data'->>'limit', (envelope->'data'->>'amount')::bigint FROM outbox "
                    "WHERE type = 'wallet.limit_exceeded' AND subject = :s"
                ),
                {"s": f"player:{player_id}"},
            )
        ).all()
    assert events == [("daily_deposit_limit", 41)]
