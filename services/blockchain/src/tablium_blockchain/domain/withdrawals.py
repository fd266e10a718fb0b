"""Rules of a withdrawal: whose it is, where it may go, how much, and the fees of its transaction.

>>> checked_address("0x" + "ab" * 20)
'0xABaBaBaBABabABabAbAbABAbABabababaBaBABaB'
>>> bumped(100, percent=25)
125
"""

from __future__ import annotations

import uuid

from eth_utils import to_checksum_address

from tablium_kit.errors import InvalidInput

# uuid5 namespace of withdrawal ids: uuid5(namespace, "<player>:<Idempotency-Key>").
WITHDRAWAL_NAMESPACE = uuid.UUID("3c2e9a51-7f04-4d6b-a1b8-5e0f9c3d2a17")
# The wallet's namespace of withdrawal holds (tablium_wallet.services.withdrawals): uuid5(it, withdrawal id).
HOLD_NAMESPACE = uuid.UUID("9d4c2b1a-6e5f-4a3b-8c7d-0e1f2a3b4c5d")
ZERO_ADDRESS = "0x" + "0" * 40
# A plain ETH transfer's gas; a token transfer's is estimated by the node.
NATIVE_GAS = 21_000


class BadAddress(InvalidInput):
    title = "Bad address"
    slug = "bad-address"


class AmountOutOfBounds(InvalidInput):
    title = "Amount out of bounds"
    slug = "amount-out-of-bounds"


def withdrawal_id(player_id: uuid.UUID, idempotency_key: str) -> uuid.UUID:
    return uuid.uuid5(WITHDRAWAL_NAMESPACE, f"{player_id}:{idempotency_key}")


def hold_id(withdrawal: uuid.UUID) -> uuid.UUID:
    """The wallet's pending transfer holding the withdrawal's money."""
    return uuid.uuid5(HOLD_NAMESPACE, str(withdrawal))


def checked_address(text: str) -> str:
    """The address, checksummed (EIP-55). Mixed case must be a valid checksum (a typo in a checksummed
    address is caught); all-lowercase or all-uppercase hex carries no checksum and is taken as written."""
    body = text[2:] if text.startswith("0x") else ""
    if len(body) != 40 or any(c not in "0123456789abcdefABCDEF" for c in body):
        raise BadAddress("an address is 0x and 40 hexadecimal digits")
    checksummed = to_checksum_address("0x" + body)
    if body != body.lower() and body != body.upper() and text != checksummed:
        raise BadAddress(f"{text} fails its EIP-55 checksum: a typo? (checksummed it would read {checksummed})")
    if checksummed == ZERO_ADDRESS:
        raise BadAddress("the zero address burns what it receives")
    return checksummed


def check_amount(amount: int, *, asset: str, minimum: dict[str, int], maximum: dict[str, int]) -> None:
    low, high = minimum.get(asset, 1), maximum.get(asset)
    if amount < low:
        raise AmountOutOfBounds(f"the smallest {asset} withdrawal is {low}", extra={"minimum": str(low)})
    if high is not None and amount > high:
        raise AmountOutOfBounds(f"the largest {asset} withdrawal is {high}", extra={"maximum": str(high)})


def initial_fees(*, base_fee: int, tip: int) -> tuple[int, int]:
    """(maxFeePerGas, maxPriorityFeePerGas): room for the base fee to double before the next blocks."""
    return 2 * base_fee + tip, tip


def bumped(fee: int, *, percent: int) -> int:
    """A fee raised by ``percent`` (rounded up, and by at least 1 wei): a replacement must outbid."""
    return max(fee + 1, -(-fee * (100 + percent) // 100))


def replacement_fees(*, old_max_fee: int, old_tip: int, base_fee: int, tip: int, percent: int) -> tuple[int, int]:
    """A replacement's fees: both raised by ``percent`` over the old ones, and at least what the market
    asks now."""
    new_tip = max(bumped(old_tip, percent=percent), tip)
    new_max = max(bumped(old_max_fee, percent=percent), 2 * base_fee + new_tip)
    return new_max, new_tip
