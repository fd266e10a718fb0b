"""The blockchain service's database: models and migrations."""
