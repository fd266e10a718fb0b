"""amounts and counters unsigned 128-bit; the registered players

Every amount and counter goes from bigint (signed 64-bit) to NUMERIC(39,0) with a 0..2^128-1 check
(ADR 0007); existing values convert exactly. The flag checks lose the ``::numeric`` casts that kept
bigint sums from overflowing. ``players`` is the projection of ``player.registered`` that admin
credits check; it starts with every player who has an account (each got one at registration).

Revision ID: c4e81a7d2b96
Revises: ae58513b2d42
Create Date: 2026-12-03 07:50:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from tablium_kit.money import amount_range

revision: str = "c4e81a7d2b96"
down_revision: str | Sequence[str] | None = "ae58513b2d42"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

AMOUNTS = {
    "accounts": ("debits_pending", "debits_posted", "credits_pending", "credits_posted"),
    "transfers": ("amount",),
    "audit_log": ("amount",),
}
FLAG_CHECKS = {
    "debits_must_not_exceed_credits": "flags & 1 = 0 OR debits_pending{cast} + debits_posted <= credits_posted",
    "credits_must_not_exceed_debits": "flags & 2 = 0 OR credits_pending{cast} + credits_posted <= debits_posted",
}


def _alter(table: str, columns: Sequence[str], type_: str) -> None:
    # One ALTER TABLE per table: Postgres rewrites the table once, whatever the number of columns.
    changes = ", ".join(f"ALTER COLUMN {c} TYPE {type_} USING {c}::{type_}" for c in columns)
    op.execute(f"ALTER TABLE {table} {changes}")


def _flag_checks(cast: str) -> None:
    for name, condition in FLAG_CHECKS.items():
        op.drop_constraint(op.f(f"ck_accounts_{name}"), "accounts", type_="check")
        op.create_check_constraint(op.f(f"ck_accounts_{name}"), "accounts", condition.format(cast=cast))


def upgrade() -> None:
    op.drop_constraint(op.f("ck_accounts_counters_not_negative"), "accounts", type_="check")
    for table, columns in AMOUNTS.items():
        _alter(table, columns, "numeric(39,0)")
        for column in columns:
            op.create_check_constraint(op.f(f"ck_{table}_{column}_u128"), table, amount_range(column))
    _flag_checks(cast="")
    op.create_table(
        "players",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("registered_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_players")),
    )
    op.execute(
        "INSERT INTO players (id) SELECT DISTINCT substring(owner FROM 8)::uuid FROM accounts WHERE kind = 'player'"
    )


def downgrade() -> None:
    # Fails (numeric out of range for bigint) once any value needs more than 63 bits: that money can't go back.
    op.drop_table("players")
    for table, columns in AMOUNTS.items():
        for column in columns:
            op.drop_constraint(op.f(f"ck_{table}_{column}_u128"), table, type_="check")
        _alter(table, columns, "bigint")
    _flag_checks(cast="::numeric")
    op.create_check_constraint(
        op.f("ck_accounts_counters_not_negative"),
        "accounts",
        "debits_pending >= 0 AND debits_posted >= 0 AND credits_pending >= 0 AND credits_posted >= 0",
    )
