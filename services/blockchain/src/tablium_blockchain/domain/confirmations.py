"""When a detected deposit is credited, reverted, or waited for."""

from __future__ import annotations

from enum import Enum


class Verdict(Enum):
    WAIT = "wait"
    CONFIRM = "confirm"
    REVERT = "revert"


def confirmations(*, head: int, block_number: int) -> int:
    """Blocks on top of the deposit's, counting its own (0 while the head is below it: a rewound head)."""
    return max(0, head - block_number + 1)


def verdict(*, head: int, block_number: int, block_hash: str, canonical_hash: str | None, required: int) -> Verdict:
    """A deposit is credited when it has ``required`` confirmations *and* its block is still the chain's
    block at that height; a block that is no longer canonical reverts it, whatever the confirmations."""
    if canonical_hash is not None and canonical_hash != block_hash:
        return Verdict.REVERT
    if canonical_hash is None:  # the chain is shorter than the deposit's height now: it was reorganised away
        return Verdict.REVERT if head < block_number else Verdict.WAIT
    if confirmations(head=head, block_number=block_number) >= required:
        return Verdict.CONFIRM
    return Verdict.WAIT
