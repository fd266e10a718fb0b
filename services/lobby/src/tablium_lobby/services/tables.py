"""Cash tables: create (admin), list with filters, get one, close."""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ARRAY, Select, String, Text, any_, bindparam, case, cast, func, literal_column, select
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncSession

from tablium_kit.db import Reader, Record
from tablium_kit.errors import NotFound
from tablium_lobby.clients.wallet import Wallet
from tablium_lobby.db.models import ACTIVE_SEAT, CashTable, Seat
from tablium_lobby.domain.stakes import Stakes
from tablium_lobby.events import TABLE_CLOSED, TABLE_OPENED, outbox


@dataclass(frozen=True)
class NewTable:
    name: str
    stakes: Stakes
    action_clock_s: int
    time_bank_s: int
    private: bool
    host_id: uuid.UUID | None
    time_bank_refill_s: int = 5
    time_bank_refill_hands: int = 10
    # A club table (members only) and, for a union table, the club's union.
    club_id: uuid.UUID | None = None
    union_id: uuid.UUID | None = None


def stakes_of(table: CashTable) -> Stakes:
    return Stakes(
        small_blind=table.small_blind,
        big_blind=table.big_blind,
        ante=table.ante,
        seat_count=table.seat_count,
        min_buy_in_bb=table.min_buy_in_bb,
        max_buy_in_bb=table.max_buy_in_bb,
        rake_bps=table.rake_bps,
        rake_cap=table.rake_cap,
    )


def escrow_owner(table_id: uuid.UUID) -> str:
    return f"table:{table_id}"


async def create_table(session: AsyncSession, wallet: Wallet, asset: str, new: NewTable) -> CashTable:
    """Open the table's escrow account (idempotent, no money moves), then record the table.

    The account is opened before the row exists: a crash in between leaves an empty account, never a
    table without one.
    """
    new.stakes.check()
    table_id = uuid.uuid4()
    escrow = await wallet.open_account(escrow_owner(table_id), "table_escrow", asset)
    s = new.stakes
    table = CashTable(
        id=table_id,
        name=new.name,
        game="nlhe",
        asset=asset,
        small_blind=s.small_blind,
        big_blind=s.big_blind,
        ante=s.ante,
        seat_count=s.seat_count,
        min_buy_in_bb=s.min_buy_in_bb,
        max_buy_in_bb=s.max_buy_in_bb,
        rake_bps=s.rake_bps,
        rake_cap=s.rake_cap,
        action_clock_s=new.action_clock_s,
        time_bank_s=new.time_bank_s,
        time_bank_refill_s=new.time_bank_refill_s,
        time_bank_refill_hands=new.time_bank_refill_hands,
        private=new.private,
        host_id=new.host_id,
        club_id=new.club_id,
        union_id=new.union_id,
        status="open",
        escrow_account_id=escrow,
        seq=0,
        hands_dealt=0,
        created_at=datetime.now(UTC),
    )
    session.add(table)
    await session.flush()
    await outbox.add(
        session,
        type=TABLE_OPENED,
        subject=str(table_id),
        data={
            "table_id": str(table_id),
            "tournament_id": None,
            "name": new.name,
            "asset": asset,
            "small_blind": str(s.small_blind),
            "big_blind": str(s.big_blind),
            "ante": str(s.ante),
            "seats": s.seat_count,
            "private": new.private,
            "club_id": None if new.club_id is None else str(new.club_id),
            "union_id": None if new.union_id is None else str(new.union_id),
        },
    )
    return table


async def get_table(session: AsyncSession, table_id: uuid.UUID, *, lock: bool = False) -> CashTable:
    query = select(CashTable).where(CashTable.id == table_id)
    if lock:
        query = query.with_for_update()
    table = (await session.execute(query)).scalar_one_or_none()
    if table is None:
        raise NotFound(f"no table {table_id}")
    return table


async def active_seats(session: AsyncSession, table_id: uuid.UUID) -> list[Seat]:
    rows = await session.execute(
        select(Seat).where(Seat.table_id == table_id, Seat.status.in_(ACTIVE_SEAT)).order_by(Seat.seat_no)
    )
    return list(rows.scalars())


@dataclass(frozen=True)
class TableFilter:
    small_blind: int | None = None
    big_blind: int | None = None
    private: bool | None = None
    min_free_seats: int | None = None
    game: str | None = None
    include_closed: bool = False


@functools.cache
def _tables_statement(
    small_blind: bool, big_blind: bool, private: bool, game: bool, min_free_seats: bool, include_closed: bool
) -> Select[Any]:
    """The table list's statement for one combination of filters, built and compiled once."""
    tables = CashTable.__table__
    active = bindparam("active", list(ACTIVE_SEAT), type_=ARRAY(String))
    taken = (
        select(Seat.table_id, func.count().label("taken"))
        .where(Seat.status == any_(active))
        .group_by(Seat.table_id)
        .subquery()
    )
    taken_count = func.coalesce(taken.c.taken, 0)
    query = select(tables, taken_count.label("taken")).outerjoin(taken, taken.c.table_id == tables.c.id)
    if not include_closed:
        query = query.where(tables.c.status == "open")
    if small_blind:
        query = query.where(tables.c.small_blind == bindparam("small_blind"))
    if big_blind:
        query = query.where(tables.c.big_blind == bindparam("big_blind"))
    if private:
        query = query.where(tables.c.private == bindparam("private"))
    if game:
        query = query.where(tables.c.game == bindparam("game"))
    if min_free_seats:
        query = query.where(tables.c.seat_count - taken_count >= bindparam("min_free_seats"))
    order = (taken_count.desc(), tables.c.created_at, tables.c.id)
    return query.order_by(*order).limit(bindparam("limit")).offset(bindparam("offset"))


def _utc_text(column: Any) -> Any:
    """A timestamp as msgspec writes an aware UTC datetime (RFC 3339, ``Z``, microseconds only when not 0)."""
    utc = column.op("AT TIME ZONE")(literal_column("'UTC'"))
    return case(
        (func.date_trunc("second", utc) == utc, func.to_char(utc, 'YYYY-MM-DD"T"HH24:MI:SS"Z"')),
        else_=func.to_char(utc, 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
    )


@functools.cache
def _tables_json_statement(*filters: bool) -> Select[Any]:
    """The table list as its JSON answer, built by Postgres in the same statement that reads it.

    Every field of ``TableOut`` in its order and wire form (amounts as decimal text: 128-bit values stay
    exact; ``free_seats`` from the seats taken in the same snapshot; no players: the list never names
    them). The service then sends the bytes as they are: no row objects, no per-table Python, no encoding
    (the Python per table was most of the list's time, ADR 0001 "The lobby's table list").
    """
    page = _tables_statement(*filters).subquery("page")
    c = page.c
    fields: list[Any] = [
        "id", c.id, "name", c.name, "game", c.game, "asset", c.asset, "status", c.status,
        "small_blind", cast(c.small_blind, Text), "big_blind", cast(c.big_blind, Text), "ante", cast(c.ante, Text),
        "seats", c.seat_count, "free_seats", c.seat_count - c.taken,
        "min_buy_in", cast(c.min_buy_in_bb * c.big_blind, Text),
        "max_buy_in", cast(c.max_buy_in_bb * c.big_blind, Text),
        "rake_bps", c.rake_bps, "rake_cap", cast(c.rake_cap, Text), "action_clock_s", c.action_clock_s,
        "time_bank_s", c.time_bank_s, "time_bank_refill_s", c.time_bank_refill_s,
        "time_bank_refill_hands", c.time_bank_refill_hands, "private", c.private, "club_id", c.club_id,
        "union_id", c.union_id, "seq", c.seq, "hands_dealt", c.hands_dealt, "created_at", _utc_text(c.created_at),
        "players", literal_column("'[]'::json"),
    ]  # fmt: skip
    ordered = aggregate_order_by(func.json_build_object(*fields), c.taken.desc(), c.created_at, c.id)
    listed = func.coalesce(func.json_agg(ordered), literal_column("'[]'::json"))
    # Bytes from the driver (convert_to: bytea), sent as they come.
    return select(func.convert_to(cast(listed, Text), "UTF8").label("body")).select_from(page)


def _filters_and_params(f: TableFilter, limit: int, offset: int) -> tuple[tuple[bool, ...], dict[str, Any]]:
    filters = (
        f.small_blind is not None,
        f.big_blind is not None,
        f.private is not None,
        f.game is not None,
        f.min_free_seats is not None,
        f.include_closed,
    )
    params: dict[str, Any] = {"limit": limit, "offset": offset}
    for name in ("small_blind", "big_blind"):
        if (amount := getattr(f, name)) is not None:
            params[name] = Decimal(amount)  # a NUMERIC column: the driver takes a Decimal
    for name in ("private", "game", "min_free_seats"):
        if (value := getattr(f, name)) is not None:
            params[name] = value
    return filters, params


async def read_tables(reader: Reader, f: TableFilter, *, limit: int, offset: int) -> list[tuple[Record, int]]:
    """``list_tables`` for a read-only answer: one statement (one snapshot), no transaction, no ORM."""
    filters, params = _filters_and_params(f, limit, offset)
    return [(row, int(row.taken)) for row in await reader.all(_tables_statement(*filters), **params)]


async def read_tables_json(reader: Reader, f: TableFilter, *, limit: int, offset: int) -> bytes:
    """The table list's JSON answer (a list of ``TableOut``), in one statement: what ``GET /tables`` sends."""
    filters, params = _filters_and_params(f, limit, offset)
    found = await reader.one_or_none(_tables_json_statement(*filters), **params)
    assert found is not None  # an aggregate without GROUP BY always has its one row
    body: bytes = found.body
    return body


async def list_tables(session: AsyncSession, f: TableFilter, *, limit: int, offset: int) -> list[tuple[CashTable, int]]:
    """Tables matching ``f`` with their taken seat counts, fullest first."""
    taken = (
        select(Seat.table_id, func.count().label("taken"))
        .where(Seat.status.in_(ACTIVE_SEAT))
        .group_by(Seat.table_id)
        .subquery()
    )
    taken_count = func.coalesce(taken.c.taken, 0)
    query = select(CashTable, taken_count).outerjoin(taken, taken.c.table_id == CashTable.id)
    if not f.include_closed:
        query = query.where(CashTable.status == "open")
    if f.small_blind is not None:
        query = query.where(CashTable.small_blind == f.small_blind)
    if f.big_blind is not None:
        query = query.where(CashTable.big_blind == f.big_blind)
    if f.private is not None:
        query = query.where(CashTable.private == f.private)
    if f.game is not None:
        query = query.where(CashTable.game == f.game)
    if f.min_free_seats is not None:
        query = query.where(CashTable.seat_count - taken_count >= f.min_free_seats)
    query = query.order_by(taken_count.desc(), CashTable.created_at, CashTable.id).limit(limit).offset(offset)
    return [(table, int(count)) for table, count in (await session.execute(query)).all()]


async def close_table(session: AsyncSession, table_id: uuid.UUID) -> tuple[CashTable, list[Seat]]:
    """Stop new sit-downs; the seats still taken are to be cashed out (by the caller, after this commits).

    The table is ``closing`` until its last seat is left, then ``closed`` (``lobby.table_closed``).
    """
    table = await get_table(session, table_id, lock=True)
    seats = await active_seats(session, table_id)
    if table.status == "open":
        table.status = "closing"
    await finish_closing(session, table, seats)
    return table, seats


async def finish_closing(session: AsyncSession, table: CashTable, seats: list[Seat]) -> None:
    if table.status == "closing" and not seats:
        table.status = "closed"
        table.closed_at = datetime.now(UTC)
        await outbox.add(session, type=TABLE_CLOSED, subject=str(table.id), data={"table_id": str(table.id)})
