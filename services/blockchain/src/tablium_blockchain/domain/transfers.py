"""What the chain says, reduced to incoming transfers: ERC-20 ``Transfer`` logs and native values.

Pure: the watcher hands in the node's answers (hex strings as JSON-RPC gives them) and gets
:class:`IncomingTransfer` values back, whoever the recipient; it then keeps those to deposit addresses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_utils import keccak, to_checksum_address

from tablium_blockchain.domain.assets import NATIVE_LOG_INDEX

# keccak("Transfer(address,address,uint256)"), as the hex string get_logs filters take.
TRANSFER_TOPIC = "0x" + keccak(text="Transfer(address,address,uint256)").hex()


@dataclass(frozen=True)
class IncomingTransfer:
    asset: str
    tx_hash: str  # 0x-hex, lowercase
    log_index: int  # NATIVE_LOG_INDEX for a native transfer
    block_number: int
    block_hash: str  # 0x-hex, lowercase
    sender: str  # checksummed
    recipient: str  # checksummed
    amount: int


def _hex(value: Any) -> str:
    """A node's hash or data field as lowercase 0x-hex (web3 hands HexBytes, raw JSON-RPC a string)."""
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    text = str(value).lower()
    return text if text.startswith("0x") else "0x" + text


def _int(value: Any) -> int:
    return value if isinstance(value, int) else int(str(value), 16)


def _topic_address(topic: Any) -> str:
    return to_checksum_address("0x" + _hex(topic)[-40:])


def token_transfer(log: dict[str, Any], *, asset: str) -> IncomingTransfer | None:
    """The transfer a ``Transfer(address,address,uint256)`` log states; None for any other log (or a
    non-standard one: an ERC-721 Transfer has the amount as a fourth topic and no data)."""
    topics = log["topics"]
    if len(topics) != 3 or _hex(topics[0]) != TRANSFER_TOPIC or log.get("removed"):
        return None
    data = _hex(log["data"])
    if len(data) != 2 + 64:
        return None
    return IncomingTransfer(
        asset=asset,
        tx_hash=_hex(log["transactionHash"]),
        log_index=_int(log["logIndex"]),
        block_number=_int(log["blockNumber"]),
        block_hash=_hex(log["blockHash"]),
        sender=_topic_address(topics[1]),
        recipient=_topic_address(topics[2]),
        amount=int(data, 16),
    )


def native_transfers(block: dict[str, Any]) -> list[IncomingTransfer]:
    """The top-level transactions of a block (fetched with full transactions) that carry ETH.

    Value moved by contract calls (internal transactions) is not seen: that needs tracing, which not
    every endpoint offers (ADR 0010). Whether the transaction succeeded is checked on its receipt.
    """
    found = []
    for tx in block["transactions"]:
        value = _int(tx["value"])
        if value > 0 and tx.get("to"):
            found.append(
                IncomingTransfer(
                    asset="ETH",
                    tx_hash=_hex(tx["hash"]),
                    log_index=NATIVE_LOG_INDEX,
                    block_number=_int(block["number"]),
                    block_hash=_hex(block["hash"]),
                    sender=to_checksum_address(tx["from"]),
                    recipient=to_checksum_address(tx["to"]),
                    amount=value,
                )
            )
    return found
