"""Accruing a player's rake at a club table under the deal in force at the hand's time.

Order of facts does not matter (ADR 0011): every rake and every deal version is stored, and a rake is
(re-)evaluated from what is stored whenever a fact that could change its result arrives:

- a hand whose player's membership, or whose club's deal in force, is not known yet stays ``pending``;
  ``club.member_joined``/``member_updated`` re-evaluate the player's pending rakes, ``club.deal_changed``
  those of the club's members and those accrued under an older version than the new one where it is in
  force, ``club.union_joined`` the pending rakes of the union's tables;
- a re-evaluation that lands on the same club and version changes nothing; one that does not takes the
  rake's parts back out of the unpaid totals (they are computed again from what the rake row names), adds
  the new ones and states ``rakeback.accrued`` again with the higher ``deal_version``. A rake already paid
  out is left as paid (logged): its period is closed.

Accruals are kept as totals per payout period, receiver and paying player (``accrual_totals``,
:mod:`tablium_rakeback.services.totals`), instead of a row per hand and part (ADR 0011).

Every writer takes the accrual lock first (:func:`lock_for_hands` shared, :func:`lock_for_facts`
exclusive), so a hand and the fact it waits for never miss each other in two concurrent transactions.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

import msgspec
import structlog
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from tablium_kit.money import format_amount
from tablium_rakeback.db.models import DealVersion, Member, Rake, UnionClub
from tablium_rakeback.domain.split import (
    AgentDeal,
    Deal,
    Layer,
    Part,
    amounts_along,
    layers,
    receivers,
    split,
    tier_layers,
)
from tablium_rakeback.domain.tiers import Tier
from tablium_rakeback.events import ACCRUED, outbox
from tablium_rakeback.services import totals

log = structlog.get_logger("tablium.rakeback.accrual")

# The role of a membership known only from its member_left (its join not arrived yet).
UNKNOWN_ROLE = ""
# pg_advisory_xact_lock key of accruals (any bigint unique to this service's database).
_LOCK = 0x52414B45  # "RAKE"


async def lock_for_hands(session: AsyncSession) -> None:
    """Hands accrue concurrently with each other, never with a club fact or a payout run."""
    await session.execute(text("SELECT pg_advisory_xact_lock_shared(:k)"), {"k": _LOCK})


async def lock_for_facts(session: AsyncSession) -> None:
    await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK})


def deal_of(row: DealVersion) -> Deal:
    return Deal(
        club_id=str(row.club_id),
        union_id=str(row.union_id) if row.union_id else None,
        version=row.version,
        union_bps=row.union_bps,
        club_bps=row.club_bps,
        player_bps=row.player_bps,
        agents=tuple(
            AgentDeal(
                agent_id=a["agent_id"], parent_agent_id=a["parent_agent_id"], bps=a["bps"], player_bps=a["player_bps"]
            )
            for a in row.agents
        ),
        effective_from=row.effective_from,
    )


def _members_query(columns: Any, club_id: uuid.UUID, union_id: uuid.UUID | None, players: list[uuid.UUID]) -> Any:
    if union_id is None:
        return select(*columns).where(
            Member.club_id == club_id, Member.player_id.in_(players), Member.role != UNKNOWN_ROLE
        )
    return (
        select(*columns)
        .join(UnionClub, (UnionClub.club_id == Member.club_id) & (UnionClub.union_id == union_id))
        .where(Member.player_id.in_(players), Member.role != UNKNOWN_ROLE)
        .order_by(Member.player_id, UnionClub.active.desc(), Member.active.desc(), Member.club_id)
        .distinct(Member.player_id)
    )


async def members_of(
    session: AsyncSession, club_id: uuid.UUID, union_id: uuid.UUID | None, players: list[uuid.UUID]
) -> dict[uuid.UUID, Member]:
    """The memberships the players' rake flows through: of the table's club, or at a union table, of each
    player's own club in that union. A member who left since still counts: the hand was played as a member."""
    query = _members_query([Member], club_id, union_id, players)
    return {m.player_id: m for m in (await session.scalars(query)).all()}


async def member_links_of(
    session: AsyncSession, club_id: uuid.UUID, union_id: uuid.UUID | None, players: list[uuid.UUID]
) -> dict[uuid.UUID, tuple[uuid.UUID, uuid.UUID | None]]:
    """:func:`members_of` as (club, agent) per player, the only columns a batch's split reads: plain rows,
    not ORM instances (a batch over many tables reads hundreds)."""
    query = _members_query([Member.player_id, Member.club_id, Member.agent_id], club_id, union_id, players)
    return {row[0]: (row[1], row[2]) for row in (await session.execute(query)).all()}


async def deal_in_force(session: AsyncSession, club_id: uuid.UUID, at: datetime) -> DealVersion | None:
    query = (
        select(DealVersion)
        .where(DealVersion.club_id == club_id, DealVersion.effective_from <= at)
        .order_by(DealVersion.version.desc())
        .limit(1)
    )
    deal: DealVersion | None = await session.scalar(query)
    return deal


_RAKE_COLUMNS = (
    "hand_id",
    "player_id",
    "table_id",
    "club_id",
    "union_id",
    "asset",
    "rake",
    "hand_time",
    "period_start",
    "status",
    "member_club_id",
    "deal_version",
    "agent_id",
    "tier",
)


@dataclass(slots=True)
class NewRake:
    """A rake being recorded: the columns of a ``rakes`` row, without the ORM's instrumentation (a batch
    builds thousands; reading and writing ORM attributes cost more than their insert)."""

    hand_id: uuid.UUID
    player_id: uuid.UUID
    table_id: uuid.UUID
    club_id: uuid.UUID | None
    union_id: uuid.UUID | None
    asset: str
    rake: int
    hand_time: datetime
    period_start: datetime
    status: str
    member_club_id: uuid.UUID | None = None
    deal_version: int | None = None
    agent_id: uuid.UUID | None = None
    tier: str | None = None


# What the accrual steps read from a rake, stored or being recorded.
AnyRake = Rake | NewRake


def plan(
    rake: AnyRake, member: Member | None, deal_row: DealVersion | None, deal: Deal | None = None
) -> list[Part] | None:
    """The parts of a club rake under the deal in force and the member's agent (None: a fact is missing);
    ``deal``: ``deal_row`` already read as a :class:`Deal`."""
    if member is None or deal_row is None:
        return None
    return split(rake.rake, _layers_of(rake, member.agent_id, deal or deal_of(deal_row)))


def _layers_of(rake: AnyRake, agent: uuid.UUID | None, deal: Deal) -> list[Layer]:
    union_id = str(rake.union_id) if rake.union_id is not None and deal.union_id == str(rake.union_id) else None
    agent_id = str(agent) if agent else None
    return layers(deal, player_id=str(rake.player_id), agent_id=agent_id, union_id=union_id)


async def parts_of(session: AsyncSession, rake: Rake, tiers: dict[str, list[Tier]] | None = None) -> list[Part] | None:
    """The parts an accrued rake added to the totals, computed again from what its row names (the deal
    version, the agent and the table's union; a public table's: its tier, looked up in ``tiers``). None for
    a rake not accrued. The split is a function of those, so this is exactly what was added."""
    if rake.status != "accrued":
        return None
    if rake.tier is not None:
        table = (tiers or {}).get(rake.asset, [])
        tier = next((t for t in table if t.name == rake.tier), None)
        return None if tier is None else split(rake.rake, tier_layers(player_id=str(rake.player_id), bps=tier.bps))
    assert rake.member_club_id is not None
    assert rake.deal_version is not None
    row = await session.get_one(DealVersion, (rake.member_club_id, rake.deal_version))
    return split(rake.rake, _layers_of(rake, rake.agent_id, deal_of(row)))


class Chain:
    """The receivers of the club rakes of one deal version, agent and table union in a batch, whoever the
    paying member: built and checked once, and the fixed JSON of each part in ``rakeback.accrued`` encoded
    once. Its player layer names no one (its beneficiary is ``""``): it is the paying player of each rake."""

    __slots__ = ("_entry_club", "_entry_version", "_part_heads", "keys", "receivers")

    def __init__(self, chain: list[Layer], club_id: uuid.UUID, deal_version: int) -> None:
        self.receivers = receivers(chain)
        self.keys = [(layer.kind, layer.beneficiary) for layer in chain]
        self._entry_club = f'","club_id":"{club_id}","rake":"'.encode()
        self._entry_version = f'","deal_version":{deal_version},"tier":null,"parts":['.encode()
        # Per layer, its part's JSON up to the amount; the player layer's in two, around the player's id.
        self._part_heads: list[tuple[bytes, bytes | None]] = []
        for layer, bps in zip(chain, self.receivers.kept, strict=True):
            if layer.kind == "player":
                self._part_heads.append((b'{"kind":"player","beneficiary":"', f'","bps":{bps},"amount":"'.encode()))
            else:
                kind, beneficiary = msgspec.json.encode(layer.kind), msgspec.json.encode(layer.beneficiary)
                head = b'{"kind":' + kind + b',"beneficiary":' + beneficiary + f',"bps":{bps},"amount":"'.encode()
                self._part_heads.append((head, None))

    def entry_json(self, player: bytes, rake: int, amounts: list[int]) -> msgspec.Raw:
        """The ``accruals`` entry of one rake, as ``announce`` encodes it from structs (same keys, same order)."""
        pieces = [b'{"player_id":"', player, self._entry_club, format_amount(rake).encode(), self._entry_version]
        for index, ((head, tail), amount) in enumerate(zip(self._part_heads, amounts, strict=True)):
            if index:
                pieces.append(b",")
            pieces.append(head)
            if tail is not None:
                pieces += (player, tail)
            pieces += (str(amount).encode(), b'"}')
        pieces.append(b"]}")
        return msgspec.Raw(b"".join(pieces))


class Split(NamedTuple):
    """A club rake's parts in a batch: its chain and the amounts, layer by layer (no :class:`Part` each)."""

    chain: Chain
    amounts: list[int]


# What a rake added to the totals: its parts, or (a batch's club rakes) its split along a chain.
Accrued = list[Part] | Split


async def plan_club_rakes(session: AsyncSession, rakes: Sequence[NewRake]) -> list[tuple[NewRake, Split]]:
    """Decide new club rakes together: each is marked ``accrued`` (returned with its split, in their order)
    or ``pending``. The memberships are read once per table club (and union), and every
    version of the deals of the clubs concerned once: the one in force is picked per hand's time."""
    tables: dict[tuple[uuid.UUID, uuid.UUID | None], set[uuid.UUID]] = {}
    for rake in rakes:
        assert rake.club_id is not None
        tables.setdefault((rake.club_id, rake.union_id), set()).add(rake.player_id)
    members = {key: await member_links_of(session, key[0], key[1], sorted(players)) for key, players in tables.items()}
    clubs = {link[0] for found in members.values() for link in found.values()}
    # Per club, (effective_from, version) newest version first, as plain tuples: read for every rake.
    versions: dict[uuid.UUID, list[tuple[datetime, int]]] = {}
    deals: dict[tuple[uuid.UUID, int], Deal] = {}
    if clubs:
        query = select(DealVersion).where(DealVersion.club_id.in_(clubs)).order_by(DealVersion.version.desc())
        for row in (await session.scalars(query)).all():
            versions.setdefault(row.club_id, []).append((row.effective_from, row.version))
            deals[(row.club_id, row.version)] = deal_of(row)
    plans: list[tuple[NewRake, Split]] = []
    # The receivers depend on the deal version, the member's agent and the table's union (and the player,
    # the chain's last layer): built once per combination in the batch, then each rake split along them.
    chains: dict[tuple[Any, ...], Chain] = {}
    # The version in force per club and hand time (a hand's players share its time).
    in_force_at: dict[tuple[uuid.UUID, datetime], int | None] = {}
    for rake in rakes:
        assert rake.club_id is not None
        link = members[(rake.club_id, rake.union_id)].get(rake.player_id)
        if link is None:
            rake.status = "pending"
            continue
        club_id, agent_id = link
        at = (club_id, rake.hand_time)
        if at in in_force_at:
            version = in_force_at[at]
        else:
            version = in_force_at[at] = next((v for f, v in versions.get(club_id, []) if f <= rake.hand_time), None)
        if version is None:
            rake.status = "pending"
            continue
        chain_key = (club_id, version, agent_id, rake.union_id)
        chain = chains.get(chain_key)
        if chain is None:
            deal = deals[(club_id, version)]
            union_id = str(rake.union_id) if rake.union_id is not None and deal.union_id == str(rake.union_id) else None
            chain_layers = layers(deal, player_id="", agent_id=str(agent_id) if agent_id else None, union_id=union_id)
            chain = chains[chain_key] = Chain(chain_layers, club_id, version)
        rake.status, rake.member_club_id, rake.deal_version, rake.agent_id = "accrued", club_id, version, agent_id
        plans.append((rake, Split(chain, amounts_along(rake.rake, chain.receivers.kept))))
    return plans


async def evaluate(session: AsyncSession, rake: Rake) -> None:
    """Re-accrue one club rake from the stored facts after a late fact; ``rake`` is locked by the caller."""
    assert rake.club_id is not None
    member = (await members_of(session, rake.club_id, rake.union_id, [rake.player_id])).get(rake.player_id)
    deal_row = await deal_in_force(session, member.club_id, rake.hand_time) if member else None
    parts = plan(rake, member, deal_row)
    if parts is None or member is None or deal_row is None:
        if rake.status != "accrued":
            # An accrued rake stays as it is: its parts are in the totals, and only a deal in force can
            # replace them (facts are never taken back, so this is a union table's member now read
            # through another club without a deal yet).
            rake.status = "pending"
        return
    if rake.status == "accrued" and (rake.member_club_id, rake.deal_version) == (member.club_id, deal_row.version):
        return
    if rake.paid:
        log.warning("late fact for a rake already paid out", hand_id=str(rake.hand_id), player=str(rake.player_id))
        return
    if rake.status == "accrued":
        previous = await parts_of(session, rake)
        assert previous is not None
        await totals.take_back(session, rake, previous)
    rake.status, rake.member_club_id, rake.deal_version, rake.tier = "accrued", member.club_id, deal_row.version, None
    rake.agent_id = member.agent_id
    await totals.write_parts(session, [(rake, parts)])
    await announce(session, [(rake, parts)])


_INSERT_RAKES = """
    WITH given AS (
        SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::uuid[], $6::text[],
                             $7::text[]::numeric[], $8::timestamptz[], $9::timestamptz[], $10::text[], $11::uuid[],
                             $12::int[], $13::uuid[], $14::text[]) WITH ORDINALITY
            AS g(hand_id, player_id, table_id, club_id, union_id, asset, rake, hand_time, period_start, status,
                 member_club_id, deal_version, agent_id, tier, n)
    ), inserted AS (
        INSERT INTO rakes (hand_id, player_id, table_id, club_id, union_id, asset, rake, hand_time, period_start,
                           status, member_club_id, deal_version, agent_id, tier)
        SELECT hand_id, player_id, table_id, club_id, union_id, asset, rake, hand_time, period_start, status,
               member_club_id, deal_version, agent_id, tier
        FROM given ORDER BY n
        ON CONFLICT DO NOTHING RETURNING hand_id, player_id
    )
    SELECT coalesce(array_agg(g.n), '{}') FROM given g
    WHERE NOT EXISTS (SELECT FROM inserted i WHERE i.hand_id = g.hand_id AND i.player_id = g.player_id)
"""


async def insert_rakes(session: AsyncSession, rakes: Sequence[NewRake]) -> set[tuple[uuid.UUID, uuid.UUID]]:
    """Insert new rakes (distinct keys) in one statement (one array a column), in their order; the (hand,
    player) keys not inserted: rakes already stored (a duplicate hand). Postgres answers with their
    positions (usually none): reading back every key inserted cost a batch more than the insert."""
    columns = [[getattr(r, c) for r in rakes] for c in _RAKE_COLUMNS]
    # Amounts as text: asyncpg's binary numeric encoding of an int costs several times more.
    columns[_RAKE_COLUMNS.index("rake")] = [str(r.rake) for r in rakes]
    skipped = await (await totals.driver(session)).fetchval(_INSERT_RAKES, *columns)
    return {(rakes[position - 1].hand_id, rakes[position - 1].player_id) for position in skipped}


async def hand_parts(
    session: AsyncSession, hand_ids: Sequence[uuid.UUID], tiers: dict[str, list[Tier]] | None = None
) -> list[tuple[Rake, list[Part] | None]]:
    """The audit of hands: each rake and its parts (None: not accrued yet), as the totals received them
    (``tiers``: the tier tables, for public tables' rakes)."""
    rakes = (
        await session.scalars(select(Rake).where(Rake.hand_id.in_(hand_ids)).order_by(Rake.hand_id, Rake.player_id))
    ).all()
    return [(rake, await parts_of(session, rake, tiers)) for rake in rakes]


class _PartOut(msgspec.Struct):
    kind: str
    beneficiary: str
    bps: int
    amount: str


class _AccrualOut(msgspec.Struct):
    player_id: uuid.UUID
    club_id: uuid.UUID | None
    rake: str
    deal_version: int | None
    tier: str | None
    parts: list[_PartOut]


async def announce(session: AsyncSession, accrued: Sequence[tuple[AnyRake, Accrued]]) -> None:
    """One ``rakeback.accrued`` per hand, listing its players' accruals made in this transaction.

    The entries are msgspec structs (ids as UUIDs): the outbox encodes them straight to the same JSON as
    dicts of strings, with no ``str()`` of every id and amount in Python first; a batch's splits are
    encoded along their chain's JSON, encoded once (:meth:`Chain.entry_json`: the same JSON). Parts never
    exceed their rake, which was read within the 128-bit range, so ``str`` is their wire form."""
    by_hand: dict[uuid.UUID, list[_AccrualOut | msgspec.Raw]] = {}
    firsts: dict[uuid.UUID, AnyRake] = {}
    players: dict[uuid.UUID, bytes] = {}
    for rake, parts in accrued:
        entries = by_hand.get(rake.hand_id)
        if entries is None:
            entries = by_hand[rake.hand_id] = []
            firsts[rake.hand_id] = rake
        if isinstance(parts, Split):
            player = players.get(rake.player_id)
            if player is None:
                player = players[rake.player_id] = str(rake.player_id).encode()
            entries.append(parts.chain.entry_json(player, rake.rake, parts.amounts))
            continue
        entries.append(
            _AccrualOut(
                rake.player_id,
                rake.member_club_id,
                format_amount(rake.rake),
                rake.deal_version,
                rake.tier,
                [_PartOut(p.kind, p.beneficiary, p.bps, str(p.amount)) for p in parts],
            )
        )
    events: list[tuple[str, str, dict[str, Any]]] = []
    for hand_id, entries in by_hand.items():
        first = firsts[hand_id]
        text_id = str(hand_id)
        data: dict[str, Any] = {
            "hand_id": text_id,
            "table_id": str(first.table_id),
            "union_id": str(first.union_id) if first.union_id else None,
            "asset": first.asset,
            "hand_time": first.hand_time.isoformat(),
            "accruals": entries,
        }
        events.append((ACCRUED, text_id, data))
    await outbox.add_many(session, events)


async def _evaluate_all(session: AsyncSession, query: Any) -> int:
    rakes = (
        await session.scalars(query.order_by(Rake.hand_time, Rake.hand_id, Rake.player_id).with_for_update())
    ).all()
    for rake in rakes:
        await evaluate(session, rake)
    return len(rakes)


async def reevaluate_player(session: AsyncSession, player_id: uuid.UUID) -> int:
    """A membership fact: the player's rakes that waited for one."""
    return await _evaluate_all(session, select(Rake).where(Rake.status == "pending", Rake.player_id == player_id))


async def reevaluate_club(session: AsyncSession, deal: DealVersion) -> int:
    """A deal version: its members' pending rakes, and the rakes it now governs under an older version."""
    members = select(Member.player_id).where(Member.club_id == deal.club_id)
    pending = await _evaluate_all(session, select(Rake).where(Rake.status == "pending", Rake.player_id.in_(members)))
    superseded = await _evaluate_all(
        session,
        # Paid rakes are left as paid: only the unpaid ones (what ix_rakes_unpaid holds) can change.
        select(Rake).where(
            Rake.status == "accrued",
            ~Rake.paid,
            Rake.member_club_id == deal.club_id,
            Rake.hand_time >= deal.effective_from,
            Rake.deal_version < deal.version,
        ),
    )
    return pending + superseded


async def reevaluate_union(session: AsyncSession, union_id: uuid.UUID) -> int:
    return await _evaluate_all(session, select(Rake).where(Rake.status == "pending", Rake.union_id == union_id))
