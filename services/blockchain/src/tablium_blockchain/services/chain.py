"""The connection to the chain, and the token contract: configured, or compiled and deployed at start.

In production ``usdt_address`` names the real contract. Elsewhere the service compiles the project's
own Vyper token (contracts/usdt.vy) and deploys it from the hot wallet the first time it meets a chain;
the address is kept with the chain's genesis hash, so a restarted development node (same chain id,
fresh state) gets a new deployment while a running one keeps its token.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import structlog
from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address
from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from web3 import AsyncHTTPProvider, AsyncWeb3

from tablium_blockchain.db.models import ChainToken
from tablium_blockchain.domain.addresses import MasterKey
from tablium_blockchain.settings import BlockchainSettings

log = structlog.get_logger("tablium.blockchain.chain")

TOKEN_SOURCE = Path(__file__).resolve().parents[1] / "contracts" / "usdt.vy"
# Serialises first-start deployments of every instance and worker ("tablium token" in ASCII).
_DEPLOY_LOCK = 0x7461626C746F6B


class WrongChain(RuntimeError):
    """The endpoint serves another chain than the settings name."""


@dataclass(frozen=True)
class CompiledContract:
    abi: list[dict[str, Any]]
    bytecode: str


@functools.cache
def compiled_token() -> CompiledContract:
    """The token compiled from source (vyper, offline); about a second, once per process."""
    import vyper  # here: only development chains compile (production names its token), and it is slow to import

    output = vyper.compile_code(TOKEN_SOURCE.read_text(), output_formats=["abi", "bytecode"])
    return CompiledContract(abi=output["abi"], bytecode=output["bytecode"])


@dataclass(frozen=True)
class Chain:
    """What the service knows of its chain once connected."""

    w3: AsyncWeb3[AsyncHTTPProvider]
    chain_id: int
    genesis_hash: str
    # Asset -> its token contract (checksummed); ETH is native and has none.
    tokens: dict[str, str]
    master: MasterKey

    async def close(self) -> None:
        """Closes the provider's HTTP sessions (web3 keeps them cached for the process's life otherwise)."""
        await self.w3.provider.disconnect()

    def token_asset(self, address: str) -> str | None:
        address = to_checksum_address(address)
        return next((asset for asset, token in self.tokens.items() if token == address), None)


def web3_for(rpc_url: str) -> AsyncWeb3[AsyncHTTPProvider]:
    # No retries inside web3: the watcher's next poll is the retry, and a stuck call must not hide an outage.
    return AsyncWeb3(AsyncHTTPProvider(rpc_url, request_kwargs={"timeout": 10}, exception_retry_configuration=None))


async def block_hash(w3: AsyncWeb3[AsyncHTTPProvider], number: int) -> str | None:
    """The chain's block hash at ``number`` now (lowercase 0x-hex), None past the head."""
    try:
        block = await w3.eth.get_block(number)
    except Exception as exc:  # web3 raises BlockNotFound past the head
        if type(exc).__name__ == "BlockNotFound":
            return None
        raise
    return "0x" + bytes(block["hash"]).hex()


async def connect(settings: BlockchainSettings, sessions: async_sessionmaker[AsyncSession], master: MasterKey) -> Chain:
    w3 = web3_for(settings.rpc_url)
    try:
        chain_id = await w3.eth.chain_id
        if settings.chain_id is not None and chain_id != settings.chain_id:
            raise WrongChain(f"{settings.rpc_url} serves chain {chain_id}, not {settings.chain_id}")
        genesis = await block_hash(w3, 0)
        assert genesis is not None
        if settings.usdt_address:
            usdt = to_checksum_address(settings.usdt_address)
        else:
            usdt = await _development_token(w3, sessions, chain_id, genesis, master.hot_wallet())
        log.info("chain connected", chain_id=chain_id, usdt=usdt)
    except BaseException:
        await w3.provider.disconnect()  # a node that is away: the next attempt makes a new provider
        raise
    return Chain(w3=w3, chain_id=chain_id, genesis_hash=genesis, tokens={"USDT": usdt}, master=master)


async def _development_token(
    w3: AsyncWeb3[AsyncHTTPProvider],
    sessions: async_sessionmaker[AsyncSession],
    chain_id: int,
    genesis: str,
    deployer: LocalAccount,
) -> str:
    async with sessions() as session, session.begin():
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _DEPLOY_LOCK})
        known = await session.scalar(
            select(ChainToken).where(ChainToken.chain_id == chain_id, ChainToken.asset == "USDT")
        )
        if known is not None and known.genesis_hash == genesis and len(await w3.eth.get_code(known.address)) > 0:
            return known.address
        contract = await anyio.to_thread.run_sync(compiled_token)
        address, block = await deploy(w3, deployer, contract)
        values = {"chain_id": chain_id, "asset": "USDT", "address": address, "genesis_hash": genesis}
        await session.execute(
            insert(ChainToken)
            .values(**values, deployed_block=block)
            .on_conflict_do_update(
                index_elements=["chain_id", "asset"],
                set_={"address": address, "genesis_hash": genesis, "deployed_block": block},
            )
        )
        log.info("development token deployed", chain_id=chain_id, address=address, block=block)
        return address


async def send(w3: AsyncWeb3[AsyncHTTPProvider], sender: LocalAccount, tx: dict[str, Any]) -> dict[str, Any]:
    """Sign ``tx`` as ``sender`` (EIP-1559 fees from the node), send it and wait for its receipt.

    For development and test transactions only (deployment, minting): withdrawals get a nonce manager.
    """
    base_fee = (await w3.eth.get_block("latest"))["baseFeePerGas"]
    tip = await w3.eth.max_priority_fee
    tx = {
        "chainId": await w3.eth.chain_id,
        "from": sender.address,
        "nonce": await w3.eth.get_transaction_count(sender.address, "pending"),
        "maxPriorityFeePerGas": tip,
        "maxFeePerGas": 2 * base_fee + tip,
        **tx,
    }
    if "gas" not in tx:
        tx["gas"] = await w3.eth.estimate_gas(tx)  # type: ignore[arg-type]
    signed = sender.sign_transaction(tx)
    tx_hash = await w3.eth.send_raw_transaction(signed.raw_transaction)
    receipt = dict(await w3.eth.wait_for_transaction_receipt(tx_hash, timeout=60))
    if receipt["status"] != 1:
        raise RuntimeError(f"transaction {tx_hash.hex()} failed")
    return receipt


async def deploy(
    w3: AsyncWeb3[AsyncHTTPProvider], deployer: LocalAccount, contract: CompiledContract
) -> tuple[str, int]:
    factory = w3.eth.contract(abi=contract.abi, bytecode=contract.bytecode)
    tx = await factory.constructor().build_transaction({"from": deployer.address})
    receipt = await send(w3, deployer, {"data": tx["data"]})
    return to_checksum_address(receipt["contractAddress"]), int(receipt["blockNumber"])


def token_contract(chain: Chain, asset: str = "USDT") -> Any:
    return chain.w3.eth.contract(address=chain.tokens[asset], abi=compiled_token().abi)  # type: ignore[call-overload]
