"""Response bodies of the blockchain service."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

import msgspec

from tablium_blockchain.domain.assets import Asset
from tablium_kit.inputs import exact
from tablium_kit.money import Amount, PositiveAmount


class DepositAddressOut(msgspec.Struct, kw_only=True):
    asset: Asset
    chain_id: int
    # Checksummed (EIP-55).
    address: str
    # EIP-681, for a QR code: ETH to the address, or the token's transfer to it.
    uri: str
    # The token contract (checksummed); null for ETH.
    token: str | None
    decimals: int
    # Blocks a deposit needs (its own included) before it is credited.
    confirmations: int


class ChainStatusOut(msgspec.Struct, kw_only=True):
    chain_id: int
    head_block: int
    # The next block the watcher scans (null before its first poll).
    next_block: int | None
    lag_blocks: int
    # Seconds between the head's timestamp and the last scanned block's.
    lag_s: float | None
    # Wei, as decimal strings.
    base_fee_per_gas: str
    max_priority_fee_per_gas: str
    hot_wallet: str
    # Asset -> balance in its minor unit, a decimal string.
    hot_wallet_balances: dict[str, str]
    deposits_waiting: int
    oldest_waiting_deposit_at: datetime | None
    watcher_error: str | None
    # Withdrawals not yet mined (requested, held, signed or sent), and whether an admin paused them.
    withdrawals_pending: int
    withdrawals_paused: bool


class WithdrawalRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    # EIP-55 checksummed (mixed case is checked), or all-lowercase hex.
    address: Annotated[str, msgspec.Meta(pattern=exact("0x[0-9a-fA-F]{40}"))]
    asset: Asset
    # In the asset's minor unit (USDT: 6 decimals, ETH: wei), a decimal string.
    amount: PositiveAmount


class WithdrawalOut(msgspec.Struct, kw_only=True):
    id: UUID
    status: Literal["requested", "refused", "held", "signed", "sent", "confirmed", "failed"]
    asset: Asset
    amount: Amount
    # Checksummed (EIP-55).
    address: str
    chain_id: int
    # The latest signed transaction (a stuck one is replaced at the same nonce); once mined, the mined one.
    tx_hash: str | None
    nonce: int | None
    block_number: int | None
    # Why it was refused or failed.
    reason: str | None
    created_at: datetime
    settled_at: datetime | None


class WithdrawalPauseIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    paused: bool
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=500)]


class WithdrawalPauseOut(msgspec.Struct, kw_only=True):
    paused: bool
    reason: str | None
    actor: str | None
    changed_at: datetime | None
