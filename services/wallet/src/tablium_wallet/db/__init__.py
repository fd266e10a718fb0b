"""The wallet database: models and migrations."""
