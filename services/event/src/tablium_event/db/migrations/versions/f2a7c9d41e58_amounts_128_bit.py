"""money columns unsigned 128-bit

Registrations', prizes' and purchases' amounts go from bigint to NUMERIC(39,0) with a 0..2^128-1
check (ADR 0007); existing values convert exactly.

Revision ID: f2a7c9d41e58
Revises: e8b31f4c7a20
Create Date: 2026-12-03 08:00:00.000000

"""

from collections.abc import Sequence

from alembic import op

from tablium_kit.money import amount_range

revision: str = "f2a7c9d41e58"
down_revision: str | Sequence[str] | None = "e8b31f4c7a20"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("registrations", "prizes", "purchases")


def upgrade() -> None:
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} ALTER COLUMN amount TYPE numeric(39,0) USING amount::numeric(39,0)")
        op.create_check_constraint(op.f(f"ck_{table}_amount_u128"), table, amount_range("amount"))


def downgrade() -> None:
    # Fails (numeric out of range for bigint) once an amount needs more than 63 bits.
    for table in TABLES:
        op.drop_constraint(op.f(f"ck_{table}_amount_u128"), table, type_="check")
        op.execute(f"ALTER TABLE {table} ALTER COLUMN amount TYPE bigint USING amount::bigint")
