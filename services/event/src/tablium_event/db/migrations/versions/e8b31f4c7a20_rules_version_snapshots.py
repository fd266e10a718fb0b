"""rules version of journal facts, and the snapshots taken (for pruning the journal)

Revision ID: e8b31f4c7a20
Revises: c51d2e8a9f03
Create Date: 2026-12-02 02:00:00.000000

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision: str = 'e8b31f4c7a20'
down_revision: Union[str, Sequence[str], None] = 'c51d2e8a9f03'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    # Every fact journaled so far was applied by the rules of version 1.
    op.add_column('tournament_facts', sa.Column('rules_version', sa.Integer(), nullable=False, server_default='1'))
    op.alter_column('tournament_facts', 'rules_version', server_default=None)
    op.create_table('tournament_snapshots',
    sa.Column('tournament_id', sa.Uuid(), nullable=False),
    sa.Column('version', sa.BigInteger(), nullable=False),
    sa.Column('rules_version', sa.Integer(), nullable=False),
    sa.Column('taken_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['tournament_id'], ['tournaments.id'], name=op.f('fk_tournament_snapshots_tournament_id_tournaments'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tournament_id', 'version', name=op.f('pk_tournament_snapshots'))
    )
    # The snapshot each started tournament has now.
    op.execute(
        'INSERT INTO tournament_snapshots (tournament_id, version, rules_version) '
        'SELECT id, state_version, 1 FROM tournaments WHERE state IS NOT NULL'
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table('tournament_snapshots')
    op.drop_column('tournament_facts', 'rules_version')
