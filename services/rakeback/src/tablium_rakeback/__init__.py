"""The rakeback service: rake accruals under club deals and tiers, periodic payouts, statements."""
