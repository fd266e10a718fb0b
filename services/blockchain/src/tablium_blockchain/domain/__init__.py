"""Pure rules of the blockchain service: assets, deposit addresses, ERC-20 logs, confirmations."""
