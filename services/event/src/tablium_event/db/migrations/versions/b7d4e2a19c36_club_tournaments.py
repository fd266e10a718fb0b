"""club tournaments: a tournament's club and union, the projection of club membership; when a prize was owed

Revision ID: b7d4e2a19c36
Revises: f2a7c9d41e58
Create Date: 2026-12-04 16:00:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "b7d4e2a19c36"
down_revision: str | Sequence[str] | None = "f2a7c9d41e58"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.add_column("tournaments", sa.Column("club_id", sa.Uuid(), nullable=True))
    op.add_column("tournaments", sa.Column("union_id", sa.Uuid(), nullable=True))
    op.create_index(op.f("ix_tournaments_club_id"), "tournaments", ["club_id"], unique=False)
    op.create_index(op.f("ix_tournaments_union_id"), "tournaments", ["union_id"], unique=False)
    op.create_table(
        "club_memberships",
        sa.Column("club_id", sa.Uuid(), nullable=False),
        sa.Column("player_id", sa.Uuid(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=True),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("club_id", "player_id", name=op.f("pk_club_memberships")),
    )
    op.create_index(op.f("ix_club_memberships_player_id"), "club_memberships", ["player_id"], unique=False)
    op.create_table(
        "club_unions",
        sa.Column("union_id", sa.Uuid(), nullable=False),
        sa.Column("club_id", sa.Uuid(), nullable=False),
        sa.Column("member", sa.Boolean(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("union_id", "club_id", name=op.f("pk_club_unions")),
    )
    op.create_index(op.f("ix_club_unions_club_id"), "club_unions", ["club_id"], unique=False)
    op.add_column(
        "prizes", sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False)
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_column("prizes", "created_at")
    op.drop_index(op.f("ix_club_unions_club_id"), table_name="club_unions")
    op.drop_table("club_unions")
    op.drop_index(op.f("ix_club_memberships_player_id"), table_name="club_memberships")
    op.drop_table("club_memberships")
    op.drop_index(op.f("ix_tournaments_union_id"), table_name="tournaments")
    op.drop_index(op.f("ix_tournaments_club_id"), table_name="tournaments")
    op.drop_column("tournaments", "union_id")
    op.drop_column("tournaments", "club_id")
