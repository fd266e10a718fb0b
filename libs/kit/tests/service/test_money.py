"""Amounts: strict decimal strings on the wire, NUMERIC(39,0) in Postgres, 0..2^128-1 everywhere."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated

import msgspec
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from litestar import post
from litestar.params import JSONBody
from litestar.testing import AsyncTestClient
from sqlalchemy import Column, MetaData, Table, insert, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import create_async_engine

from tablium_kit.app import ServiceDefinition, create_service_app
from tablium_kit.auth import StaticKeySource
from tablium_kit.money import (
    AMOUNT_ITEMS,
    AMOUNT_PATTERN,
    AMOUNT_VALUES,
    MAX_AMOUNT,
    POSITIVE_AMOUNT_PATTERN,
    POSITIVE_AMOUNT_VALUES,
    Amount,
    AmountOutOfRange,
    AmountType,
    PositiveAmount,
    SignedAmount,
    amount_checks,
    format_amount,
    parse_amount,
)
from tablium_kit.settings import ServiceSettings

from .conftest import KID

BAD_STRINGS = ["", "05", "00", "+5", "-5", " 5", "5 ", "5\n", "\n5", "5.0", "1e3", "1_000", "\u0665", "0x10", "1" * 40]


class Deposit(msgspec.Struct, forbid_unknown_fields=True):
    amount: PositiveAmount
    fee: Amount


class DepositOut(msgspec.Struct):
    amount: Amount
    balance: SignedAmount


@post("/deposits")
async def deposit(data: JSONBody[Deposit]) -> DepositOut:
    amount = parse_amount(data.amount)
    return DepositOut(amount=format_amount(amount), balance=format_amount(parse_amount(data.fee) - amount))


class Payouts(msgspec.Struct, forbid_unknown_fields=True):
    prizes: Annotated[list[Amount], AMOUNT_ITEMS]
    caps: Annotated[dict[str, PositiveAmount], POSITIVE_AMOUNT_VALUES]
    stacks: Annotated[dict[str, Amount], AMOUNT_VALUES]


@post("/payouts")
async def payouts(data: JSONBody[Payouts]) -> Payouts:
    return data


@pytest.fixture(scope="module")
async def client(sample_settings: ServiceSettings, signing_key: rsa.RSAPrivateKey) -> AsyncIterator[AsyncTestClient]:
    app = create_service_app(
        ServiceDefinition(
            settings=sample_settings,
            title="money",
            route_handlers=[deposit, payouts],
            key_source=StaticKeySource({KID: signing_key.public_key()}),
        )
    )
    async with AsyncTestClient(app=app) as test_client:
        yield test_client


@pytest.mark.parametrize("bad", BAD_STRINGS)
def test_the_wire_type_refuses_anything_but_canonical_digits(bad: str) -> None:
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(msgspec.json.encode({"amount": bad, "fee": "0"}), type=Deposit)
    with pytest.raises(AmountOutOfRange):
        parse_amount(bad)


@pytest.mark.parametrize("bad", [5, 5.0, 1e3, True, None, ["5"]])
def test_the_wire_type_refuses_json_numbers_and_other_types(bad: object) -> None:
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(msgspec.json.encode({"amount": bad, "fee": "0"}), type=Deposit)


def test_the_range_is_0_to_2_pow_128_minus_1() -> None:
    assert parse_amount("0") == 0
    assert parse_amount(str(MAX_AMOUNT)) == MAX_AMOUNT
    with pytest.raises(AmountOutOfRange):
        parse_amount(str(MAX_AMOUNT + 1))
    with pytest.raises(AmountOutOfRange):
        parse_amount("9" * 39)
    assert format_amount(MAX_AMOUNT) == str(MAX_AMOUNT)
    assert format_amount(-MAX_AMOUNT) == f"-{MAX_AMOUNT}"
    with pytest.raises(ValueError, match="128-bit"):
        format_amount(MAX_AMOUNT + 1)


def test_a_positive_amount_refuses_zero() -> None:
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(b'{"amount":"0","fee":"0"}', type=Deposit)


async def test_over_http_amounts_round_trip_as_strings(client: AsyncTestClient) -> None:
    response = await client.post("/deposits", json={"amount": str(MAX_AMOUNT), "fee": "0"})
    assert response.status_code == 201, response.text
    assert response.json() == {"amount": str(MAX_AMOUNT), "balance": f"-{MAX_AMOUNT}"}


@pytest.mark.parametrize(
    "body",
    [
        b'{"amount":5,"fee":"0"}',
        b'{"amount":1e3,"fee":"0"}',
        b'{"amount":"5.0","fee":"0"}',
        b'{"amount":" 5","fee":"0"}',
        b'{"amount":"+5","fee":"0"}',
        b'{"amount":"05","fee":"0"}',
        b'{"amount":"5\\n","fee":"0"}',
        b'{"amount":"340282366920938463463374607431768211456","fee":"0"}',
    ],
)
async def test_over_http_bad_amounts_are_problems(client: AsyncTestClient, body: bytes) -> None:
    response = await client.post("/deposits", content=body, headers={"content-type": "application/json"})
    assert response.status_code in (400, 422), response.text
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_the_openapi_shows_a_string_with_the_pattern(client: AsyncTestClient) -> None:
    schema = (await client.get("/schema/openapi.json")).json()
    fields = schema["components"]["schemas"]["Deposit"]["properties"]
    assert fields["amount"]["type"] == "string"
    assert fields["amount"]["pattern"] == POSITIVE_AMOUNT_PATTERN
    assert fields["fee"]["pattern"] == AMOUNT_PATTERN


async def test_numeric_39_0_round_trips_ints_exactly_and_checks_the_range(
    make_database: Callable[[str], Awaitable[str]],
) -> None:
    metadata = MetaData()
    ledger = Table("ledger", metadata, Column("amount", AmountType, nullable=False), *amount_checks("amount"))
    engine = create_async_engine(await make_database("money"))
    try:
        async with engine.begin() as connection:
            await connection.run_sync(metadata.create_all)
            values = [0, 1, 2**63, 10**24, MAX_AMOUNT]
            await connection.execute(insert(ledger), [{"amount": v} for v in values])
            read = (await connection.execute(select(ledger.c.amount).order_by(ledger.c.amount))).scalars().all()
            assert read == values
            assert all(type(v) is int for v in read)
            column_type = await connection.scalar(
                text(
                    "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'ledger'::regclass "
                    "AND attname = 'amount'"
                )
            )
            assert column_type == "numeric(39,0)"
        for outside in (MAX_AMOUNT + 1, -1):
            with pytest.raises(IntegrityError):
                async with engine.begin() as connection:
                    await connection.execute(insert(ledger), [{"amount": outside}])
    finally:
        await engine.dispose()


async def test_members_of_lists_and_dicts_are_checked_and_documented(client: AsyncTestClient) -> None:
    good = {"prizes": ["0", "5"], "caps": {"USDT": "1"}, "stacks": {"1": "0"}}
    assert (await client.post("/payouts", json=good)).json() == good
    for bad in ({"prizes": [5]}, {"prizes": ["05"]}, {"caps": {"USDT": "0"}}, {"stacks": {"1": "1e3"}}):
        response = await client.post("/payouts", json={**good, **bad})
        assert response.status_code == 400, (bad, response.text)
    fields = (await client.get("/schema/openapi.json")).json()["components"]["schemas"]["Payouts"]["properties"]
    assert fields["prizes"]["items"] == {"type": "string", "pattern": AMOUNT_PATTERN}
    assert fields["caps"]["additionalProperties"] == {"type": "string", "pattern": POSITIVE_AMOUNT_PATTERN}
    assert fields["stacks"]["additionalProperties"] == {"type": "string", "pattern": AMOUNT_PATTERN}
