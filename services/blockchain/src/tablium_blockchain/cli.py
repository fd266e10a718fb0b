"""``tablium-blockchain``: serve, migrate, openapi, revision, dev-deposit."""

from __future__ import annotations

import asyncio

import click
from eth_account import Account
from eth_utils import is_address, to_checksum_address

from tablium_blockchain.app import MIGRATIONS
from tablium_blockchain.domain.addresses import MasterKey
from tablium_blockchain.services.chain import connect, send, token_contract
from tablium_blockchain.settings import load_settings
from tablium_kit import db
from tablium_kit.cli import service_cli
from tablium_kit.localchain import DEV_MNEMONIC

main = service_cli(
    "blockchain", settings=load_settings, app_factory="tablium_blockchain.app:create_app", migrations_dir=MIGRATIONS
)


@main.command("dev-deposit", help="Development chains only: pay a deposit address from anvil's test account 1.")
@click.option("--to", "to", required=True, help="The deposit address (GET /api/v1/deposits/address).")
@click.option("--asset", type=click.Choice(["USDT", "ETH"]), default="USDT", show_default=True)
@click.option("--amount", required=True, type=click.IntRange(min=1), help="In the minor unit: 25000000 = 25 USDT.")
def dev_deposit(to: str, asset: str, amount: int) -> None:
    settings = load_settings()
    if settings.is_production:
        raise click.ClickException("dev-deposit is for development chains")
    if not is_address(to):
        raise click.ClickException(f"{to!r} is not an address")
    Account.enable_unaudited_hdwallet_features()
    payer = Account.from_mnemonic(DEV_MNEMONIC, account_path="m/44'/60'/0'/0/1")

    async def run() -> str:
        engine = db.create_engine(settings.database_url, pool_size=1)
        try:
            master = MasterKey(
                settings.master_mnemonic, deposit_path=settings.deposit_path, hot_wallet_path=settings.hot_wallet_path
            )
            chain = await connect(settings, db.session_factory(engine), master)
            recipient = to_checksum_address(to)
            if asset == "ETH":
                receipt = await send(chain.w3, payer, {"to": recipient, "value": amount, "gas": 21_000})
            else:
                token, hot = token_contract(chain), master.hot_wallet()
                mint = await token.functions.mint(payer.address, amount).build_transaction({"from": hot.address})
                await send(chain.w3, hot, {"to": mint["to"], "data": mint["data"]})
                pay = await token.functions.transfer(recipient, amount).build_transaction({"from": payer.address})
                receipt = await send(chain.w3, payer, {"to": pay["to"], "data": pay["data"]})
            await chain.close()
            return "0x" + bytes(receipt["transactionHash"]).hex()
        finally:
            await engine.dispose()

    click.echo(f"sent {amount} {asset} (minor units) to {to}: {asyncio.run(run())}")
