"""The player service's database: models, repositories, migrations."""
