"""a refunded tournament fee's reversal: accrual_totals.rake and .amount may be negative

Revision ID: c7a2e9d41f36
Revises: b4e1f0a7c2d9
Create Date: 2026-12-04 19:20:00

A fee refunded after its period was paid adds the negation of its parts to the receivers' unpaid totals
(``events/entry_fee_refunds.py``): those two columns are signed 128-bit amounts from here on.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "c7a2e9d41f36"
down_revision: str | Sequence[str] | None = "b4e1f0a7c2d9"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

U128 = "340282366920938463463374607431768211455"
COLUMNS = ("rake", "amount")


def upgrade() -> None:
    for column in COLUMNS:
        op.drop_constraint(op.f(f"ck_accrual_totals_{column}_u128"), "accrual_totals", type_="check")
        op.create_check_constraint(
            op.f(f"ck_accrual_totals_{column}_signed_u128"),
            "accrual_totals",
            f"{column} >= -{U128} AND {column} <= {U128}",
        )


def downgrade() -> None:
    for column in COLUMNS:
        op.drop_constraint(op.f(f"ck_accrual_totals_{column}_signed_u128"), "accrual_totals", type_="check")
        op.create_check_constraint(
            op.f(f"ck_accrual_totals_{column}_u128"), "accrual_totals", f"{column} >= 0 AND {column} <= {U128}"
        )
