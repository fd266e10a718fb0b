"""Pure ledger rules: assets, accounts, balances, limits. No I/O."""
