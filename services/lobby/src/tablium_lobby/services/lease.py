"""Who runs a table: a lease per table in Redis, fenced by an epoch in Postgres.

One instance at a time keeps a table's clock (turn deadlines, time banks, time-outs), deals its hands and
runs what follows them. It holds the table's lease: the Redis key ``<prefix>:lease:<table>`` holding
``<instance>:<epoch>``, taken with ``SET NX PX`` and renewed by compare-and-``PEXPIRE`` every
``lease_renew_s`` (TTL ``lease_ttl_s``). Taking it bumps ``cash_tables.lease_epoch`` under the table's
row lock; every write only the holder may make compares that column with the epoch it took, in the same
transaction (:func:`check_fence`). A paused or partitioned former holder whose lease expired and was taken
by another instance finds a newer epoch there and writes nothing (:class:`LeaseLost`): the fence is in the
database, where the writes are, so a late Redis answer cannot let a stale holder through.

Leases spread across instances: each instance says it is alive in a Redis sorted set (``<prefix>:instances``,
member → expiry) every round, and its share is the tables that need a runner divided by the live instances,
rounded up. An instance holding its share leaves a free table to the others for ``DEFER_ROUNDS`` rounds and
only then takes it itself, so a table is never left without a runner (say the others are dead but not yet
expired). An instance holding more than its share (another joined late, or came back) hands the excess
back, never mid-hand: a table whose hand just ended and was settled, before the next deal
(:meth:`LeaseKeeper.hand_back`, called by the runner between hands), or one with no hand at all. It
releases the lease under the runner's lock; the instances under their share take it at their next round
(bumping the epoch, so anything the former holder still tried would be fenced), and the former holder
leaves it to them for ``DEFER_ROUNDS`` rounds.

Players' own actions and seat changes are not fenced: any instance writes them under the table's row
lock (the one lock every writer takes) and announces them; the holder hears of them through the table's
Redis channel (and, as a backstop, by seeing the table's ``seq`` move at its next renewal) and re-reads
the table before its clock acts.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
import uuid
from typing import TYPE_CHECKING, Any

import structlog
from prometheus_client import Counter
from sqlalchemy import exists, or_, select

from tablium_lobby.db.models import ACTIVE_SEAT, CashTable, Seat

if TYPE_CHECKING:
    from tablium_lobby.services.dealer import Dealer

log = structlog.get_logger("tablium.lobby.lease")
ROUNDS = Counter("tablium_lobby_lease_rounds", "Lease rounds run (renewals and takeovers)")
HANDED_BACK = Counter("tablium_lobby_leases_handed_back", "Leases released between hands to even the load")
# Rounds an instance holding its share of the tables waits before taking a free one itself.
DEFER_ROUNDS = 2


class LeaseLost(Exception):
    """This instance no longer holds the table's lease: the write it was about to make is refused."""


def check_fence(table: CashTable, epoch: int | None) -> None:
    """Refuse a lease holder's write unless ``epoch`` is still the table's (call with the row locked)."""
    if epoch is None or table.lease_epoch != epoch:
        raise LeaseLost(f"lease epoch {epoch} is not the table's ({table.lease_epoch})")


_RENEW = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0"
_RENEW_MANY = (
    "local renewed = {} for i, key in ipairs(KEYS) do "
    "if redis.call('get', key) == ARGV[i + 1] then renewed[i] = redis.call('pexpire', key, ARGV[1]) "
    "else renewed[i] = 0 end end return renewed"
)
_SWAP = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then redis.call('set', KEYS[1], ARGV[2], 'PX', ARGV[3]) return 1 end "
    "return 0"
)
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"


class Leases:
    """The Redis side of the table leases of one instance."""

    def __init__(self, redis: Any, prefix: str, instance: str, ttl_s: float) -> None:
        self.redis = redis
        self.prefix = prefix
        self.instance = instance
        self.ttl_ms = int(ttl_s * 1000)

    def key(self, table_id: uuid.UUID) -> str:
        return f"{self.prefix}:lease:{table_id}"

    async def claim(self, table_id: uuid.UUID) -> str | None:
        """Take the lease if nobody holds it: a claim token, to be confirmed with the epoch once bumped."""
        token = f"{self.instance}:claiming:{uuid.uuid4().hex}"
        taken = await self.redis.set(self.key(table_id), token, nx=True, px=self.ttl_ms)
        return token if taken else None

    async def confirm(self, table_id: uuid.UUID, claim: str, epoch: int) -> str | None:
        """Replace the claim by ``<instance>:<epoch>`` (None if the claim expired meanwhile)."""
        token = f"{self.instance}:{epoch}"
        swapped = await self.redis.eval(_SWAP, 1, self.key(table_id), claim, token, self.ttl_ms)
        return token if swapped else None

    async def renew(self, table_id: uuid.UUID, token: str) -> bool:
        return bool(await self.redis.eval(_RENEW, 1, self.key(table_id), token, self.ttl_ms))

    async def renew_many(self, held: list[tuple[uuid.UUID, str]]) -> list[bool]:
        """Renew many leases in one round trip, in order: one script doing compare-and-``PEXPIRE`` on each
        (a pipeline of one command a lease cost the client ~1% of the lobby's CPU at 500 tables)."""
        if not held:
            return []
        keys = [self.key(table_id) for table_id, _ in held]
        results = await self.redis.eval(_RENEW_MANY, len(keys), *keys, self.ttl_ms, *(token for _, token in held))
        return [bool(result) for result in results]

    async def release(self, table_id: uuid.UUID, token: str) -> None:
        await self.redis.eval(_RELEASE, 1, self.key(table_id), token)

    async def holder(self, table_id: uuid.UUID) -> str | None:
        value = await self.redis.get(self.key(table_id))
        return value.decode() if isinstance(value, bytes) else value

    def instances_key(self) -> str:
        return f"{self.prefix}:instances"

    async def heartbeat(self) -> int:
        """This instance is alive for a lease TTL from now; how many are (itself included)."""
        now_ms = int(time.time() * 1000)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zadd(self.instances_key(), {self.instance: now_ms + self.ttl_ms})
            pipe.zremrangebyscore(self.instances_key(), "-inf", now_ms)
            pipe.zcard(self.instances_key())
            pipe.pexpire(self.instances_key(), self.ttl_ms)  # gone once every instance stopped
            *_, live, _ = await pipe.execute()
        return max(1, int(live))

    async def leave(self) -> None:
        await self.redis.zrem(self.instances_key(), self.instance)


class LeaseKeeper:
    """Renews this instance's leases (a task of their own) and, in rounds, takes those nobody holds, every
    ``lease_renew_s``."""

    def __init__(self, dealer: Dealer, leases: Leases, renew_s: float) -> None:
        self.dealer = dealer
        self.leases = leases
        self.renew_s = renew_s
        self._claiming: set[uuid.UUID] = set()
        self.rounds = 0
        self.needing = 0  # tables that needed a runner at the last round
        self.live = 1  # instances alive at the last round
        self._free_since: dict[uuid.UUID, int] = {}  # free tables left to the others: since which round
        self.excess = 0  # leases held above this instance's share at the last round: to hand back
        self._handed_back: dict[uuid.UUID, int] = {}  # tables handed back: in which round

    async def run(self) -> None:
        # Renewals in a task of their own: a round (the database's list of tables, claims each with an
        # epoch bump, presence, hand-backs) over hundreds of tables on a busy loop outlasted the TTL, and
        # the leases it was about to renew expired under their holder (bench: 526 "lease lost" in a
        # minute at 250 tables, each a disown, an epoch bump and a full re-read).
        renewals = asyncio.create_task(self._renew_forever(), name="lobby-lease-renewals")
        try:
            while True:
                try:
                    await self.round()
                except Exception:  # Redis or the database away: try again next round (leases expire meanwhile)
                    log.warning("lease round failed", exc_info=True)
                ROUNDS.inc()
                await asyncio.sleep(self.renew_s)
        finally:
            renewals.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewals

    async def _renew_forever(self) -> None:
        while True:
            try:
                await self.renew()
            except Exception:  # Redis away: the next try (the leases' TTL is the slack)
                log.warning("lease renewal failed", exc_info=True)
            await asyncio.sleep(self.renew_s)

    async def renew(self) -> None:
        """This instance alive, its sockets' players present, and every lease it holds renewed, in three
        round trips whatever their number; a lease found taken or expired is given up at once (its clock
        stops, the epoch fences the rest)."""
        self.live = await self.leases.heartbeat()
        await self.dealer.refresh_presence()  # the players' presence has the same TTL
        held = [(t, r.lease_token) for t, r in self.dealer.runners.items() if r.lease_token is not None]
        for (table_id, token), ok in zip(held, await self.leases.renew_many(held), strict=True):
            runner = self.dealer.runners.get(table_id)
            if not ok and runner is not None and runner.lease_token == token:  # not released meanwhile
                log.warning("lease lost", table=str(table_id), epoch=runner.epoch)
                self.dealer.disown(table_id)

    async def round(self) -> None:
        """Tables that need a runner: a hand running, or someone seated."""
        seated = exists().where(Seat.table_id == CashTable.id, Seat.status.in_(ACTIVE_SEAT))
        async with self.dealer.sessions() as session:
            rows = await session.execute(
                select(CashTable.id, CashTable.seq, CashTable.current_hand_id).where(
                    CashTable.status != "closed", or_(CashTable.current_hand_id.is_not(None), seated)
                )
            )
            found = rows.tuples().all()
        tables = {table_id: seq for table_id, seq, _ in found}
        idle = {table_id for table_id, _, hand in found if hand is None}
        self.rounds += 1
        self.needing, self.live = len(tables), await self.leases.heartbeat()
        self._free_since = {t: r for t, r in self._free_since.items() if t in tables}
        self._handed_back = {t: r for t, r in self._handed_back.items() if self.rounds - r <= DEFER_ROUNDS}
        for table_id, held in list(self.dealer.runners.items()):
            if held.lease_token is not None and table_id not in tables:
                await self.release(table_id)  # nobody left to run it for
        # The leases held are renewed by their own task (:meth:`renew`), which also gives up lost ones.
        kept: list[uuid.UUID] = []
        for table_id, seq in tables.items():
            runner = self.dealer.runners.get(table_id)
            if runner is not None and runner.lease_token is not None:
                if runner.seq_seen < seq and not runner.lock.locked():
                    # A commit this instance did not hear of (a relay lost). Not a cache ahead of the
                    # round's read: actions committed since then (most tables, each round, at 500) are
                    # no reason to re-read the table; nor a runner mid-commit (its lock held: a batch on
                    # the lanes moves seq_seen only when its caller wakes), which the next round sees.
                    runner.nudge()
                kept.append(table_id)
                continue
            await self.claim_fairly(table_id)
        await self.dealer.check_presence_many(kept)  # one round trip, as the renewals
        self.excess = max(0, self.held() - self.share()) if self.live > 1 else 0
        for table_id in idle:  # no hand to wait for: handed back now (the others are under their share)
            runner = self.dealer.runners.get(table_id)
            if self.excess > 0 and runner is not None and runner.lease_token is not None and not runner.between:
                await self.hand_back(table_id)

    async def hand_back(self, table_id: uuid.UUID) -> bool:
        """Between hands (the last one settled, the next not dealt): release the table's lease if this
        instance holds more than its share. Under the runner's lock, and only with no hand in its
        cache, so no deal or action of this instance is half-way; True if handed back."""
        runner = self.dealer.runners.get(table_id)
        if self.excess <= 0 or runner is None or runner.lease_token is None:
            return False
        async with runner.lock:
            if runner.hand is not None or runner.seq_seen < 0 or runner.lease_token is None:
                return False
            self.excess -= 1
            self._handed_back[table_id] = self.rounds
            await self.release(table_id)
        HANDED_BACK.inc()
        log.info("lease handed back", table=str(table_id), instance=self.leases.instance)
        return True

    def held(self) -> int:
        return sum(1 for runner in self.dealer.runners.values() if runner.lease_token is not None)

    def share(self, extra: int = 0) -> int:
        """This instance's share of the tables needing a runner (``extra``: ones not counted yet)."""
        return max(1, math.ceil((self.needing + extra) / self.live))

    async def claim_fairly(self, table_id: uuid.UUID) -> bool:
        """Take a free table at once while under this instance's share; else only once it stayed free
        ``DEFER_ROUNDS`` rounds (the instances under theirs had their chance). One this instance just
        handed back is left to the others at first whatever its count."""
        if self.held() < self.share() and table_id not in self._handed_back:
            self._free_since.pop(table_id, None)
            return await self.claim(table_id)
        if await self.leases.holder(table_id) is not None:
            self._free_since.pop(table_id, None)
            return False
        since = self._free_since.setdefault(table_id, self.rounds)
        if self.rounds - since < DEFER_ROUNDS:
            return False
        self._free_since.pop(table_id, None)
        return await self.claim(table_id)

    async def claim_fresh(self, table_id: uuid.UUID) -> bool:
        """A table this instance wants to deal at (a seat change here): taken at once if, counting it,
        this instance is within its share; else left to the rounds (another instance takes it)."""
        if self.held() >= self.share(extra=1):
            return False
        return await self.claim(table_id)

    async def claim(self, table_id: uuid.UUID) -> bool:
        """Take the table's lease if it is free: Redis first, then the epoch in the database."""
        if table_id in self._claiming:
            return False
        self._claiming.add(table_id)
        try:
            claim = await self.leases.claim(table_id)
            if claim is None:
                return False
            runner = self.dealer.runner(table_id)
            epoch = await runner.take_epoch()
            token = await self.leases.confirm(table_id, claim, epoch)
            if token is None:  # the claim expired while the database answered: take it again next round
                return False
            self.dealer.own(table_id, epoch, token)
            log.info("lease taken", table=str(table_id), epoch=epoch, instance=self.leases.instance)
            return True
        finally:
            self._claiming.discard(table_id)

    async def release(self, table_id: uuid.UUID) -> None:
        runner = self.dealer.runners.get(table_id)
        token = runner.lease_token if runner is not None else None
        self.dealer.disown(table_id)
        if token is not None:
            with contextlib.suppress(Exception):
                await self.leases.release(table_id, token)

    async def release_all(self) -> None:
        """At shutdown: hand every lease back at once, so another instance need not wait out the TTL."""
        for table_id, runner in list(self.dealer.runners.items()):
            if runner.lease_token is not None:
                await self.release(table_id)
        with contextlib.suppress(Exception):
            await self.leases.leave()
