"""accruals totalled per period, receiver and paying player; rakes keep what splits them again

Revision ID: b4e1f0a7c2d9
Revises: 60ddc13acdf3
Create Date: 2026-12-04 18:30:00

The per-hand ``accruals`` rows (a row per hand, player and receiver) become ``accrual_totals`` (ADR 0011):
existing rows are added up into it, paid and unpaid apart. Each rake gets the payout period its totals are
keyed on (from ``TABLIUM_RAKEBACK_PAYOUT_PERIOD_S`` as the service reads it, a week by default), the agent
its receivers were built from (the deepest agent among its agent accruals) and whether it was paid.
The downgrade rebuilds the old schema with empty ``accruals``: totals cannot be split back per hand.
"""

import os
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "b4e1f0a7c2d9"
down_revision: str | Sequence[str] | None = "60ddc13acdf3"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

U128 = "340282366920938463463374607431768211455"


def upgrade() -> None:
    period_s = int(os.environ.get("TABLIUM_RAKEBACK_PAYOUT_PERIOD_S", str(7 * 24 * 3600)))
    op.add_column("rakes", sa.Column("period_start", sa.DateTime(timezone=True), nullable=True))
    op.add_column("rakes", sa.Column("agent_id", sa.Uuid(), nullable=True))
    op.add_column("rakes", sa.Column("paid", sa.Boolean(), server_default=sa.false(), nullable=False))
    # Periods counted from Monday 1970-01-05 00:00 UTC (domain/periods.py).
    op.execute(
        sa.text(
            "UPDATE rakes SET period_start = timestamptz '1970-01-05 00:00:00+00' + make_interval(secs => "
            ":p * floor(extract(epoch FROM hand_time - timestamptz '1970-01-05 00:00:00+00') / :p))"
        ).bindparams(p=period_s)
    )
    op.alter_column("rakes", "period_start", nullable=False)
    op.execute(
        "UPDATE rakes r SET paid = true WHERE EXISTS (SELECT 1 FROM accruals a "
        "WHERE a.hand_id = r.hand_id AND a.player_id = r.player_id AND a.payout_id IS NOT NULL)"
    )
    # The member's agent: the agent accrual of the rake that no other agent of the rake has as parent.
    op.execute(
        "UPDATE rakes r SET agent_id = a.beneficiary::uuid FROM accruals a "
        "WHERE a.hand_id = r.hand_id AND a.player_id = r.player_id AND a.kind = 'agent' AND NOT EXISTS ("
        "  SELECT 1 FROM accruals b JOIN deals d ON d.club_id = r.member_club_id AND d.version = r.deal_version "
        "  CROSS JOIN jsonb_array_elements(d.agents) x "
        "  WHERE b.hand_id = r.hand_id AND b.player_id = r.player_id AND b.kind = 'agent' "
        "  AND x->>'agent_id' = b.beneficiary AND x->>'parent_agent_id' = a.beneficiary)"
    )
    op.create_table(
        "accrual_totals",
        sa.Column("period_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("beneficiary", sa.String(length=64), nullable=False),
        sa.Column("player_id", sa.Uuid(), nullable=False),
        sa.Column("asset", sa.String(length=16), nullable=False),
        sa.Column("payout_id", sa.Uuid(), nullable=True),
        sa.Column("hands", sa.BigInteger(), nullable=False),
        sa.Column("rake", sa.Numeric(precision=39, scale=0), nullable=False),
        sa.Column("amount", sa.Numeric(precision=39, scale=0), nullable=False),
        sa.CheckConstraint(f"rake >= 0 AND rake <= {U128}", name=op.f("ck_accrual_totals_rake_u128")),
        sa.CheckConstraint(f"amount >= 0 AND amount <= {U128}", name=op.f("ck_accrual_totals_amount_u128")),
    )
    op.create_index(
        "ix_accrual_totals_key",
        "accrual_totals",
        ["kind", "beneficiary", "period_start", "player_id", "asset", "payout_id"],
        unique=True,
        postgresql_nulls_not_distinct=True,
    )
    op.create_index(
        "ix_accrual_totals_unpaid",
        "accrual_totals",
        ["period_start"],
        unique=False,
        postgresql_where="payout_id IS NULL AND kind <> 'platform'",
    )
    op.execute(
        "INSERT INTO accrual_totals (period_start, kind, beneficiary, player_id, asset, payout_id, hands, rake, amount) "
        "SELECT r.period_start, a.kind, a.beneficiary, a.player_id, a.asset, a.payout_id, count(*), sum(r.rake), "
        "sum(a.amount) FROM accruals a JOIN rakes r ON r.hand_id = a.hand_id AND r.player_id = a.player_id "
        "GROUP BY r.period_start, a.kind, a.beneficiary, a.player_id, a.asset, a.payout_id"
    )
    op.drop_index(
        "ix_accruals_unpaid", table_name="accruals", postgresql_where="payout_id IS NULL AND kind <> 'platform'"
    )
    op.drop_index("ix_accruals_beneficiary", table_name="accruals")
    op.drop_table("accruals")
    op.drop_index("ix_rakes_member_club", table_name="rakes")
    op.create_index(
        "ix_rakes_unpaid",
        "rakes",
        ["member_club_id", "hand_time"],
        unique=False,
        postgresql_where="status = 'accrued' AND NOT paid",
    )


def downgrade() -> None:
    op.drop_index("ix_rakes_unpaid", table_name="rakes", postgresql_where="status = 'accrued' AND NOT paid")
    op.create_index("ix_rakes_member_club", "rakes", ["member_club_id", "hand_time"], unique=False)
    op.create_table(
        "accruals",
        sa.Column("hand_id", sa.Uuid(), nullable=False),
        sa.Column("player_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("beneficiary", sa.String(length=64), nullable=False),
        sa.Column("asset", sa.String(length=16), nullable=False),
        sa.Column("amount", sa.Numeric(precision=39, scale=0), nullable=False),
        sa.Column("bps", sa.Integer(), nullable=False),
        sa.Column("hand_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("payout_id", sa.Uuid(), nullable=True),
        sa.CheckConstraint(f"amount >= 0 AND amount <= {U128}", name=op.f("ck_accruals_amount_u128")),
        sa.PrimaryKeyConstraint("hand_id", "player_id", "kind", "beneficiary", name=op.f("pk_accruals")),
    )
    op.create_index("ix_accruals_beneficiary", "accruals", ["kind", "beneficiary", "hand_time"], unique=False)
    op.create_index(
        "ix_accruals_unpaid",
        "accruals",
        ["hand_time"],
        unique=False,
        postgresql_where="payout_id IS NULL AND kind <> 'platform'",
    )
    op.drop_index("ix_accrual_totals_unpaid", table_name="accrual_totals")
    op.drop_index("ix_accrual_totals_key", table_name="accrual_totals")
    op.drop_table("accrual_totals")
    op.drop_column("rakes", "paid")
    op.drop_column("rakes", "agent_id")
    op.drop_column("rakes", "period_start")
