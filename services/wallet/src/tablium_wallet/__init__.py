"""Tablium wallet service: the double-entry ledger."""
