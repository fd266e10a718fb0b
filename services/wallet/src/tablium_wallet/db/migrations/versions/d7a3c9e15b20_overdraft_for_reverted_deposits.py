"""accounts.debits_overdraft: a credited deposit a deep reorg took back may take a player below zero

The debit back (ADR 0010) is allowed past the player's credits; what it goes past them is counted here, and
the database's backstop check on players' accounts allows exactly that much.

Revision ID: d7a3c9e15b20
Revises: c4e81a7d2b96
Create Date: 2026-12-03 17:00:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from tablium_kit.money import amount_range

revision: str = "d7a3c9e15b20"
down_revision: str | Sequence[str] | None = "c4e81a7d2b96"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHECK = "ck_accounts_debits_must_not_exceed_credits"


def upgrade() -> None:
    op.add_column(
        "accounts",
        sa.Column("debits_overdraft", sa.Numeric(39, 0), server_default=sa.text("0"), nullable=False),
    )
    op.create_check_constraint(
        op.f("ck_accounts_debits_overdraft_u128"), "accounts", amount_range("debits_overdraft")
    )
    op.drop_constraint(op.f(CHECK), "accounts", type_="check")
    op.create_check_constraint(
        op.f(CHECK), "accounts", "flags & 1 = 0 OR debits_pending + debits_posted <= credits_posted + debits_overdraft"
    )


def downgrade() -> None:
    # Fails while any player is overdrawn: that debt has nowhere to go in the old schema.
    op.drop_constraint(op.f(CHECK), "accounts", type_="check")
    op.create_check_constraint(op.f(CHECK), "accounts", "flags & 1 = 0 OR debits_pending + debits_posted <= credits_posted")
    op.drop_constraint(op.f("ck_accounts_debits_overdraft_u128"), "accounts", type_="check")
    op.drop_column("accounts", "debits_overdraft")
