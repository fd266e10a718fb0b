"""The deposit watcher: follows the chain from a stored cursor, detects, confirms and reverts deposits.

One poll:
1. **Fork check.** The hash of the last scanned block is compared with the chain's block at that height;
   on a mismatch the stored hashes of recent blocks (``scanned_blocks``) are walked down to the highest
   one still canonical, and the cursor goes back to the block after it. A fork deeper than the kept window
   is logged as critical (ADR 0010).
2. **Scan** at most ``max_blocks_per_poll`` blocks from the cursor: the blocks with their transactions
   (native ETH to deposit addresses, kept only when the receipt says the transaction succeeded) and the
   token's ``Transfer`` logs over the same short range (topics as hex strings). The blocks must chain
   (each parent hash the previous hash, the first one's parent the last scanned) and every log must name
   the block hash fetched: otherwise the chain moved under the scan, and the poll is abandoned.
   Then, in one transaction that advances the cursor only if it is still where the scan began
   (so two watchers never both record a range), new deposits are stored as ``detected`` and
   ``blockchain.deposit_detected`` is written to the outbox.
3. **Verdicts** on detected deposits: credited (``blockchain.deposit_confirmed``) once they have the
   required confirmations and their block is, asked of the node right then, still the chain's block at its
   height; reverted (``blockchain.deposit_reverted``, no credit) when their block is no longer canonical.
   Each status change is conditional on the status and block hash read, so it happens once.
4. **Deep reverts**: a credited deposit whose block is not the rescanned chain's block at its height (a fork
   deeper than the confirmations) is reverted with ``was_confirmed``, and alerted.

Nothing here holds a database transaction across a call to the node except step 2's short write.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy import delete, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tablium_blockchain import events
from tablium_blockchain.db.models import Deposit, ScannedBlock, WatchCursor
from tablium_blockchain.domain.confirmations import Verdict, confirmations, verdict
from tablium_blockchain.domain.transfers import TRANSFER_TOPIC, IncomingTransfer, native_transfers, token_transfer
from tablium_blockchain.services.chain import Chain, block_hash
from tablium_blockchain.services.deposit_addresses import owners
from tablium_blockchain.services.metrics import DEPOSITS, HEAD_BLOCK, REORGS, RPC_ERRORS, WATCHER_LAG_BLOCKS
from tablium_blockchain.settings import BlockchainSettings
from tablium_kit.money import MAX_AMOUNT
from tablium_kit.periodic import Periodic

log = structlog.get_logger("tablium.blockchain.watcher")


class ChainMoved(Exception):
    """The chain reorganised while a range was being read: read it again next poll."""


@dataclass
class PollResult:
    head: int
    scanned: tuple[int, int] | None = None  # first and last block scanned
    rewound_to: int | None = None  # the cursor after a fork was found
    detected: int = 0
    confirmed: int = 0
    reverted: int = 0

    @property
    def caught_up(self) -> bool:
        return self.scanned is None or self.scanned[1] >= self.head


def _hex(value: Any) -> str:
    return "0x" + bytes(value).hex()


class Watcher:
    def __init__(self, chain: Chain, sessions: async_sessionmaker[AsyncSession], settings: BlockchainSettings) -> None:
        self.chain = chain
        self.sessions = sessions
        self.settings = settings
        self._job = Periodic("deposit-watcher", self._poll_pass, interval_s=settings.poll_interval_s)

    # -- the loop ---------------------------------------------------------------------------------

    @property
    def last_error(self) -> str | None:
        """Why the last poll failed (the node or the database away; the cursor holds), None once one succeeds."""
        return self._job.last_error

    async def start(self) -> None:
        self._job.start()

    async def stop(self) -> None:
        await self._job.stop()

    async def _poll_pass(self) -> bool:
        """One poll; True (poll again at once) while behind the head or after the chain moved mid-read."""
        try:
            result = await self.poll()
        except ChainMoved:
            return True
        except Exception:
            RPC_ERRORS.inc()
            raise
        return not result.caught_up

    # -- one poll ---------------------------------------------------------------------------------

    async def poll(self) -> PollResult:
        w3 = self.chain.w3
        head = await w3.eth.block_number
        result = PollResult(head=head)
        next_block = await self._cursor(head)
        next_block = await self._rewind_on_fork(next_block, result)
        if next_block <= head:
            last = min(head, next_block + self.settings.max_blocks_per_poll - 1)
            result.detected = await self._scan(next_block, last)
            result.scanned = (next_block, last)
        await self._verdicts(head, result)
        await self._deep_reverts(result)
        chain_id = str(self.chain.chain_id)
        HEAD_BLOCK.labels(chain_id).set(head)
        WATCHER_LAG_BLOCKS.labels(chain_id).set(
            max(0, head - (result.scanned[1] if result.scanned else next_block - 1))
        )
        return result

    async def _cursor(self, head: int) -> int:
        chain = self.chain
        async with self.sessions() as session, session.begin():
            cursor = await session.get(WatchCursor, chain.chain_id)
            if cursor is not None and cursor.genesis_hash == chain.genesis_hash:
                return cursor.next_block
            # A chain never watched, or a development node restarted afresh (same id, another genesis).
            start = self.settings.start_block if self.settings.start_block is not None else head
            values = {"chain_id": chain.chain_id, "genesis_hash": chain.genesis_hash, "next_block": start}
            await session.execute(
                insert(WatchCursor).values(**values).on_conflict_do_update(index_elements=["chain_id"], set_=values)
            )
            await session.execute(delete(ScannedBlock).where(ScannedBlock.chain_id == chain.chain_id))
            log.info("watching a new chain", chain_id=chain.chain_id, from_block=start)
            return start

    async def _rewind_on_fork(self, next_block: int, result: PollResult) -> int:
        chain_id = self.chain.chain_id
        async with self.sessions() as session:
            kept = (
                await session.execute(
                    select(ScannedBlock.number, ScannedBlock.hash)
                    .where(ScannedBlock.chain_id == chain_id)
                    .order_by(ScannedBlock.number.desc())
                )
            ).all()
        if not kept or await block_hash(self.chain.w3, kept[0].number) == kept[0].hash:
            return next_block
        fork = None
        for number, stored in kept[1:]:
            if await block_hash(self.chain.w3, number) == stored:
                fork = number
                break
        REORGS.labels(str(fork is None).lower()).inc()
        if fork is None:
            fork = kept[-1].number - 1
            log.critical("reorganisation deeper than the kept window", chain_id=chain_id, window_from=fork + 1)
        async with self.sessions() as session, session.begin():
            cursor = await session.get(WatchCursor, chain_id, with_for_update=True)
            if cursor is None or cursor.next_block != next_block:
                raise ChainMoved  # another watcher moved the cursor meanwhile
            cursor.next_block = fork + 1
            await session.execute(
                delete(ScannedBlock).where(ScannedBlock.chain_id == chain_id, ScannedBlock.number > fork)
            )
            credited = await session.scalar(
                select(Deposit.tx_hash)
                .where(Deposit.chain_id == chain_id, Deposit.status == "confirmed", Deposit.block_number > fork)
                .limit(1)
            )
        if credited is not None:
            log.critical("reorganisation removed blocks with credited deposits", chain_id=chain_id, fork=fork)
        log.warning("chain reorganised", chain_id=chain_id, fork=fork, was_at=next_block - 1)
        result.rewound_to = fork + 1
        return fork + 1

    async def _fetch(self, first: int, last: int) -> tuple[list[dict[str, Any]], list[IncomingTransfer]]:
        """The blocks ``first..last`` and the transfers they carry (to anyone), read consistently."""
        w3 = self.chain.w3
        blocks = [dict(await w3.eth.get_block(n, full_transactions=True)) for n in range(first, last + 1)]
        hashes = {int(b["number"]): _hex(b["hash"]) for b in blocks}
        for previous, block in itertools.pairwise(blocks):
            if _hex(block["parentHash"]) != _hex(previous["hash"]):
                raise ChainMoved
        transfers = [t for block in blocks for t in native_transfers(block)]
        for asset, token in self.chain.tokens.items():
            logs = await w3.eth.get_logs(
                {"fromBlock": first, "toBlock": last, "address": token, "topics": [TRANSFER_TOPIC]}
            )
            for entry in logs:
                transfer = token_transfer(dict(entry), asset=asset)
                if transfer is None:
                    continue
                if hashes.get(transfer.block_number) != transfer.block_hash:
                    raise ChainMoved
                transfers.append(transfer)
        return blocks, transfers

    async def _scan(self, first: int, last: int) -> int:
        chain = self.chain
        blocks, transfers = await self._fetch(first, last)
        async with self.sessions() as session:
            players = await owners(session, {t.recipient for t in transfers})
        # The platform's own money moving (the hot wallet paying a deposit address's gas to sweep it) is no deposit.
        hot = chain.master.hot_wallet().address
        ours = [t for t in transfers if t.recipient in players and t.sender != hot]
        # A failed transaction moves no ETH (a failed token transfer emits no log at all).
        for transfer in [t for t in ours if t.asset == "ETH"]:
            receipt = await chain.w3.eth.get_transaction_receipt(transfer.tx_hash)  # type: ignore[arg-type]
            if receipt["status"] != 1:
                ours.remove(transfer)
        async with self.sessions() as session, session.begin():
            cursor = await session.get(WatchCursor, chain.chain_id, with_for_update=True)
            if cursor is None or cursor.next_block != first:
                raise ChainMoved  # another watcher recorded this range
            if first > 0:
                parent = await session.get(ScannedBlock, (chain.chain_id, first - 1))
                if parent is not None and parent.hash != _hex(blocks[0]["parentHash"]):
                    raise ChainMoved  # forked just now, below the range: the next fork check rewinds
            detected = await self._detect(session, ours, players, last)
            rows = [{"chain_id": chain.chain_id, "number": int(b["number"]), "hash": _hex(b["hash"])} for b in blocks]
            await session.execute(insert(ScannedBlock).values(rows).on_conflict_do_nothing())
            await session.execute(
                delete(ScannedBlock).where(
                    ScannedBlock.chain_id == chain.chain_id,
                    ScannedBlock.number <= last - self.settings.reorg_window,
                )
            )
            cursor.next_block = last + 1
            cursor.updated_at = datetime.now(UTC)
        return detected

    async def _detect(
        self, session: AsyncSession, transfers: list[IncomingTransfer], players: dict[str, Any], head: int
    ) -> int:
        """Store a range's deposits at first sight (or at their first sight again after a reorg reverted them),
        with their ``deposit_detected`` events: set-based, a few statements whatever the number of deposits."""
        chain_id = self.chain.chain_id
        unique: dict[tuple[str, int], IncomingTransfer] = {}
        for transfer in transfers:
            if transfer.amount > MAX_AMOUNT:
                # No ledger amount can hold it (2^128 and more of a token's minor unit): a human looks.
                log.critical("deposit over the ledger's range", tx_hash=transfer.tx_hash, amount=str(transfer.amount))
                continue
            unique[(transfer.tx_hash, transfer.log_index)] = transfer  # a log duplicated in the answer counts once
        if not unique:
            return 0
        known = {
            (row.tx_hash, row.log_index): row
            for row in await session.scalars(
                select(Deposit)
                .where(Deposit.chain_id == chain_id, tuple_(Deposit.tx_hash, Deposit.log_index).in_(list(unique)))
                .with_for_update()
            )
        }
        fresh: list[Deposit] = []
        for key, transfer in unique.items():
            deposit = known.get(key)
            if deposit is None:
                continue
            if deposit.status != "reverted":
                if deposit.block_hash != transfer.block_hash:
                    # Mined again in another block after a reorg: still on chain, its credit (if any) stands.
                    deposit.block_number, deposit.block_hash = transfer.block_number, transfer.block_hash
                continue  # seen before: a replayed or duplicated log credits once
            deposit.status, deposit.reverted_at = "detected", None
            deposit.block_number, deposit.block_hash = transfer.block_number, transfer.block_hash
            fresh.append(deposit)
        await session.flush()
        new = [
            {
                "chain_id": chain_id,
                "tx_hash": transfer.tx_hash,
                "log_index": transfer.log_index,
                "asset": transfer.asset,
                "player_id": players[transfer.recipient],
                "address": transfer.recipient,
                "sender": transfer.sender,
                "amount": transfer.amount,
                "block_number": transfer.block_number,
                "block_hash": transfer.block_hash,
                "status": "detected",
            }
            for key, transfer in unique.items()
            if key not in known
        ]
        if new:
            fresh += list(
                await session.scalars(
                    insert(Deposit).values(new).on_conflict_do_nothing().returning(Deposit),
                    execution_options={"populate_existing": True},
                )
            )
        await events.add_all(
            session,
            [
                events.deposit_event(
                    events.DEPOSIT_DETECTED,
                    deposit,
                    confirmations=confirmations(head=head, block_number=deposit.block_number),
                )
                for deposit in fresh
            ],
        )
        for deposit in fresh:
            DEPOSITS.labels(deposit.asset, "detected").inc()
            log.info("deposit detected", tx_hash=deposit.tx_hash, log_index=deposit.log_index, asset=deposit.asset)
        return len(fresh)

    async def _deep_reverts(self, result: PollResult) -> None:
        """Credited deposits whose block is not the rescanned chain's block at its height: a reorganisation
        deeper than the confirmations took them away. ``deposit_reverted`` with ``was_confirmed`` tells the
        wallet (its policy: ADR 0010); a human is alerted."""
        chain_id = self.chain.chain_id
        async with self.sessions() as session, session.begin():
            lost = (
                (
                    await session.execute(
                        update(Deposit)
                        .where(
                            Deposit.chain_id == chain_id,
                            Deposit.status == "confirmed",
                            ScannedBlock.chain_id == chain_id,
                            ScannedBlock.number == Deposit.block_number,
                            ScannedBlock.hash != Deposit.block_hash,
                        )
                        .values(status="reverted", reverted_at=datetime.now(UTC))
                        .returning(Deposit)
                    )
                )
                .scalars()
                .all()
            )
            for deposit in lost:
                await events.deposit_reverted(session, deposit, was_confirmed=True)
                DEPOSITS.labels(deposit.asset, "reverted_after_credit").inc()
                log.critical("a credited deposit left the chain", tx_hash=deposit.tx_hash, log_index=deposit.log_index)
            result.reverted += len(lost)

    async def _verdicts(self, head: int, result: PollResult) -> None:
        chain = self.chain
        async with self.sessions() as session:
            waiting = (
                await session.execute(
                    select(Deposit.tx_hash, Deposit.log_index, Deposit.block_number, Deposit.block_hash)
                    .where(Deposit.chain_id == chain.chain_id, Deposit.status == "detected")
                    .order_by(Deposit.block_number)
                )
            ).all()
        canonical: dict[int, str | None] = {}
        decided: dict[Verdict, list[tuple[str, int, str]]] = {Verdict.CONFIRM: [], Verdict.REVERT: []}
        for tx_hash, log_index, number, stored in waiting:
            if number not in canonical:
                canonical[number] = await block_hash(chain.w3, number)
            outcome = verdict(
                head=head,
                block_number=number,
                block_hash=stored,
                canonical_hash=canonical[number],
                required=self.settings.confirmations,
            )
            if outcome is not Verdict.WAIT:
                decided[outcome].append((tx_hash, log_index, stored))
        if not any(decided.values()):
            return
        now = datetime.now(UTC)
        async with self.sessions() as session, session.begin():
            new_events = []
            for outcome, keys in decided.items():
                if not keys:
                    continue
                confirm = outcome is Verdict.CONFIRM
                changed = (
                    await session.scalars(
                        update(Deposit)
                        .where(
                            Deposit.chain_id == chain.chain_id,
                            Deposit.status == "detected",
                            # The block read: one re-mined elsewhere meanwhile is looked at again next poll.
                            tuple_(Deposit.tx_hash, Deposit.log_index, Deposit.block_hash).in_(keys),
                        )
                        .values(
                            status="confirmed" if confirm else "reverted",
                            **{"confirmed_at" if confirm else "reverted_at": now},
                        )
                        .returning(Deposit)
                    )
                ).all()
                for deposit in changed:
                    DEPOSITS.labels(deposit.asset, deposit.status).inc()
                    if confirm:
                        new_events.append(events.deposit_event(events.DEPOSIT_CONFIRMED, deposit))
                        result.confirmed += 1
                        log.info("deposit confirmed", tx_hash=deposit.tx_hash, log_index=deposit.log_index)
                    else:
                        new_events.append(events.deposit_event(events.DEPOSIT_REVERTED, deposit, was_confirmed=False))
                        result.reverted += 1
                        log.warning(
                            "deposit reverted before confirmation", tx_hash=deposit.tx_hash, log_index=deposit.log_index
                        )
            await events.add_all(session, new_events)
