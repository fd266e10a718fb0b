"""Deposit addresses: derived from the environment's master key (BIP-32/44), and how a wallet app is told.

Every (player, asset) is given the next unused derivation index (a database sequence), so an address is
never handed to two players, and its private key can always be re-derived (to sweep it) from the master.
"""

from __future__ import annotations

import functools

from eth_account import Account
from eth_account.hdaccount import key_from_seed, seed_from_mnemonic
from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address

# The largest non-hardened BIP-32 index.
MAX_INDEX = 2**31 - 1


class MasterKey:
    """One environment's master key; the seed is stretched once (PBKDF2), not per address."""

    def __init__(self, mnemonic: str, *, deposit_path: str, hot_wallet_path: str) -> None:
        self._seed = seed_from_mnemonic(mnemonic, passphrase="")
        self.deposit_path = deposit_path.rstrip("/")
        self.hot_wallet_path = hot_wallet_path

    def account(self, path: str) -> LocalAccount:
        account: LocalAccount = Account.from_key(key_from_seed(self._seed, path))
        return account

    @functools.lru_cache(maxsize=4096)  # noqa: B019 - one MasterKey per process, addresses never change
    def deposit_address(self, index: int) -> str:
        if not 0 <= index <= MAX_INDEX:
            raise ValueError(f"derivation index {index} out of range")
        return str(self.account(f"{self.deposit_path}/{index}").address)

    def deposit_account(self, index: int) -> LocalAccount:
        return self.account(f"{self.deposit_path}/{index}")

    def hot_wallet(self) -> LocalAccount:
        return self.account(self.hot_wallet_path)


def payment_uri(*, asset: str, address: str, chain_id: int, token: str | None) -> str:
    """An EIP-681 ``ethereum:`` URI (QR-friendly): pay ETH to ``address``, or call the token's
    ``transfer`` with ``address`` as the recipient. No amount: the player chooses it."""
    address = to_checksum_address(address)
    if asset == "ETH":
        return f"ethereum:{address}@{chain_id}"
    if token is None:
        raise ValueError(f"{asset} has no token contract")
    return f"ethereum:{to_checksum_address(token)}@{chain_id}/transfer?address={address}"
