"""Ledger use cases: the batched transfer engine, accounts, history, limits, admin, expiry."""
