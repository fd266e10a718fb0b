"""The blockchain service: on-chain deposits (and withdrawals) settled into the wallet."""
