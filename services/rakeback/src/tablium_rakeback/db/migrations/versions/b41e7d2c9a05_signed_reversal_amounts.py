"""a paid tournament fee's reversal: rakes.rake and accruals.amount may be negative

Revision ID: b41e7d2c9a05
Revises: 60ddc13acdf3
Create Date: 2026-12-04 18:45:00

"""

from collections.abc import Sequence

from alembic import op

revision: str = "b41e7d2c9a05"
down_revision: str | Sequence[str] | None = "60ddc13acdf3"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MAX = 2**128 - 1
COLUMNS = (("rakes", "rake"), ("accruals", "amount"))


def upgrade() -> None:
    for table, column in COLUMNS:
        op.drop_constraint(op.f(f"ck_{table}_{column}_u128"), table, type_="check")
        signed = f"{column} >= -{MAX} AND {column} <= {MAX}"
        op.create_check_constraint(op.f(f"ck_{table}_{column}_signed_u128"), table, signed)


def downgrade() -> None:
    for table, column in COLUMNS:
        op.drop_constraint(op.f(f"ck_{table}_{column}_signed_u128"), table, type_="check")
        op.create_check_constraint(op.f(f"ck_{table}_{column}_u128"), table, f"{column} >= 0 AND {column} <= {MAX}")
